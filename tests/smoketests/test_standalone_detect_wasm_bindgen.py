"""Upstream's standalone/detect_wasm_bindgen.rs: `spacetime build` of a Rust module refuses wasm-bindgen and
getrandom. Both are Rust toolchain diagnostics."""

NOT_APPLICABLE = {
    "test_detect_wasm_bindgen": "Rust toolchain: `spacetime build` of a Rust crate detects wasm-bindgen imports "
    "in the compiled WASM",
    "test_detect_getrandom": "Rust toolchain: `spacetime build` of a Rust crate detects getrandom (through rand) "
    "in the compiled WASM",
}
