"""Port of upstream's cluster/namespaces.rs: nothing applies (see NOT_APPLICABLE)."""

from __future__ import annotations

NOT_APPLICABLE = {
    "test_spacetimedb_ns_csharp": "C# client bindings (`generate --lang csharp`) and their namespaces; this "
    "generator writes Python and TypeScript",
    "test_custom_ns_csharp": "C# client bindings with `generate --namespace`; this generator writes Python and "
    "TypeScript",
}
