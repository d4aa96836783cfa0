"""Upstream's standalone/typescript_index_source_name.rs: index accessors and optional columns of TypeScript
modules across updates. Its subject is the TypeScript module bindings."""

NOT_APPLICABLE = {
    "test_typescript_add_optional_columns": "TypeScript module (optional columns with defaults declared through "
    "upstream's TypeScript bindings): another module language, which issue 22 adds",
    "test_typescript_change_index_source_name": "TypeScript module (renaming a table's accessor in upstream's "
    "TypeScript bindings keeps its index's source name): another module language, which issue 22 adds",
}
