"""Upstream's standalone/csharp_module.rs: `spacetime init --lang csharp` and a dotnet build."""

NOT_APPLICABLE = {
    "test_build_csharp_module": "C# toolchain: creates a C# module project and compiles it with dotnet",
}
