"""Upstream's standalone/change_host_type.rs: updating a database to a module of another host type (WASM <-> JS)
and repairing a wrong host type recorded by old versions. Neither applies to Python modules as they stand; see the
reasons."""

NOT_APPLICABLE = {
    "test_update_with_different_host_type": "switches one database between a Rust/WASM module and a TypeScript "
    "module (host types 0 and 1) across restarts; both are other module languages here (issue 22 adds TypeScript "
    "and WASM modules)",
    "test_repair_host_type": "repairs a `st_module.program_kind` that old upstream versions recorded wrong for "
    "TypeScript modules, a legacy of upstream's own storage (its setup publishes a TypeScript module and "
    "overwrites the column by SQL)",
}
