"""Port of upstream's standalone/templates.rs: nothing applies (see NOT_APPLICABLE)."""

from __future__ import annotations

NOT_APPLICABLE = {
    "test_basic_template_dependency_versions": "checks the SDK versions pinned by upstream's basic-cpp, basic-rs, "
    "basic-ts and basic-cs templates (C++, Rust, TypeScript, C# projects); this CLI's only template is a Python "
    "module",
    "test_basic_cs_init_default_dotnet_selection": "chooses the .NET SDK version for the C# template",
    "test_template_registry_matches_discovered_templates": "compares upstream's templates/ directory with its "
    "test registry; there is no template registry here",
}
