"""Upstream's standalone/change_host_type.rs: updating a database to a module of another host type (WASM <-> JS)
and repairing a wrong host type recorded by old versions. Neither applies as things stand; see the reasons."""

NOT_APPLICABLE = {
    "test_update_with_different_host_type": "switches one database in place between upstream's prebuilt Rust module "
    "modules-basic (not available without a Rust toolchain for upstream's bindings) and a TypeScript module; and "
    "a running worker makes V8 isolates only when its own program is JS (before it forbids new threads), so it "
    "refuses an in-place switch to JS (a publish with -c, which starts a new worker, works)",
    "test_repair_host_type": "repairs a `st_module.program_kind` that old upstream versions recorded wrong for "
    "TypeScript modules, a legacy of upstream's own storage (its setup publishes a TypeScript module and "
    "overwrites the column by SQL)",
}
