"""Upstream's standalone/default_module_clippy.rs: `cargo clippy -D warnings` on upstream's Rust templates."""

NOT_APPLICABLE = {
    "test_basic_rs_template_clippy": "Rust toolchain: lints upstream's basic-rs template with cargo clippy",
    "test_chat_console_rs_template_clippy": "Rust toolchain: lints upstream's chat-console-rs template with "
    "cargo clippy",
}
