"""Upstream's standalone/csharp_aot_module.rs: a C# module compiled with NativeAOT-LLVM."""

NOT_APPLICABLE = {
    "test_build_csharp_module_aot": "C# toolchain: compiles upstream's C# test module with dotnet NativeAOT-LLVM",
}
