"""Upstream's column-defaults smoketest module, second version (``RUST_UPDATED``): a column of each kind added with
a default."""

from spacetimedb import f32, f64, i8, i16, i32, i64, table, u8, u16, u32, u64


@table(public=True)
class DefaultsTestTable:
    id: u32
    bool_value: bool = True
    i8_value: i8 = -8
    u8_value: u8 = 8
    i16_value: i16 = -16
    u16_value: u16 = 16
    i32_value: i32 = -32
    u32_value: u32 = 32
    i64_value: i64 = -64
    u64_value: u64 = 64
    f32_positive_value: f32 = 32.5
    f32_negative_value: f32 = -32.5
    f64_positive_value: f64 = 64.25
    f64_negative_value: f64 = -64.25
    string_value: str = "default string"
