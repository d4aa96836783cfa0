"""The psql-style output of `spacetime sql`, checked against SpacetimeDB's smoketest `test_sql_format`."""

import struct

from spacetimedb import sql
from spacetimedb.datastore import Datastore, TableDef
from spacetimedb.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    I128,
    I256,
    IDENTITY,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    UUID,
    ConnectionId,
    Identity,
    ProductType,
    SumType,
    SumValue,
    TimeDuration,
    Timestamp,
    Uuid,
    option,
    result,
)
from spacetimedb.sql.format import (
    format_duration_micros,
    format_float,
    format_timestamp,
    read_f64_as_upstream_cli,
)

INTS = ProductType.of(
    ("i_8", I8), ("i_16", I16), ("i_32", I32), ("i_64", I64), ("i_128", I128), ("i_256", I256)
)
INTS_ROW = (-25, -3224, -23443, -2344353, -234434897853, -234434897853)
UINTS = ProductType.of(
    ("u_8", U8), ("u_16", U16), ("u_32", U32), ("u_64", U64), ("u_128", U128), ("u_256", U256)
)
UINTS_ROW = (105, 1050, 83892, 48937498, 4378528978889, 4378528978889)
OTHERS = ProductType.of(
    ("bool", BOOL),
    ("f_32", F32),
    ("f_64", F64),
    ("str", STRING),
    ("bytes", BYTES),
    ("identity", IDENTITY),
    ("connection_id", CONNECTION_ID),
    ("timestamp", TIMESTAMP),
    ("duration", TIME_DURATION),
    ("uuid", UUID),
)
F32_VALUE = struct.unpack("<f", struct.pack("<f", 594806.58906))[0]
OTHERS_ROW = (
    True,
    F32_VALUE,
    # The module stores -3454353.345389043278459, whose shortest round-trip form is ...0434; the smoketest's
    # "-3454353.345389043" is the neighbouring double the Rust CLI's JSON parser lands on. Use that one.
    -3454353.345389043,
    "This is spacetimedb",
    bytes([1, 2, 3, 4, 5, 6, 7]),
    Identity(1),
    ConnectionId(0),
    Timestamp(0),
    TimeDuration(0),
    Uuid(0),
)
ACTION = SumType.of("inactive", "active")
ENUMS = ProductType.of(("bool_opt", option(BOOL)), ("bool_result", result(BOOL, STRING)), ("action", ACTION))
ENUMS_ROW = (True, SumValue(0, False), SumValue(1, ()))


def test_ints():
    assert sql.render_table(INTS, [INTS_ROW]) == (
        " i_8 | i_16  | i_32   | i_64     | i_128         | i_256\n"
        "-----+-------+--------+----------+---------------+---------------\n"
        " -25 | -3224 | -23443 | -2344353 | -234434897853 | -234434897853"
    )


def test_ints_tuple():
    schema = ProductType.of(("tuple", INTS))
    assert sql.render_table(schema, [(INTS_ROW,)]) == (
        " tuple\n"
        "---------------------------------------------------------------------------------------------------------\n"
        " (i_8 = -25, i_16 = -3224, i_32 = -23443, i_64 = -2344353, i_128 = -234434897853, i_256 = -234434897853)"
    )


def test_uints():
    assert sql.render_table(UINTS, [UINTS_ROW]) == (
        " u_8 | u_16 | u_32  | u_64     | u_128         | u_256\n"
        "-----+------+-------+----------+---------------+---------------\n"
        " 105 | 1050 | 83892 | 48937498 | 4378528978889 | 4378528978889"
    )


def test_others():
    assert sql.render_table(OTHERS, [OTHERS_ROW]) == (
        " bool | f_32      | f_64               | str                   | bytes            | identity"
        "                                                           | connection_id                      | timestamp"
        "                 | duration  | uuid\n"
        "------+-----------+--------------------+-----------------------+------------------+----------------------"
        "----------------------------------------------+------------------------------------+-------------------------"
        "--+-----------+----------------------------------------\n"
        ' true | 594806.56 | -3454353.345389043 | "This is spacetimedb" | 0x01020304050607 | 0x0000000000000000000000'
        "000000000000000000000000000000000000000001 | 0x00000000000000000000000000000000 | 1970-01-01T00:00:00+00:00"
        ' | +0.000000 | "00000000-0000-0000-0000-000000000000"'
    )


def test_others_tuple():
    schema = ProductType.of(("tuple", OTHERS))
    rendered = sql.render_table(schema, [(OTHERS_ROW,)])
    assert rendered.splitlines()[2] == (
        ' (bool = true, f_32 = 594806.56, f_64 = -3454353.345389043, str = "This is spacetimedb", bytes = '
        "0x01020304050607, identity = 0x0000000000000000000000000000000000000000000000000000000000000001, "
        "connection_id = 0x00000000000000000000000000000000, timestamp = 1970-01-01T00:00:00+00:00, duration = "
        '+0.000000, uuid = "00000000-0000-0000-0000-000000000000")'
    )


def test_enums():
    assert sql.render_table(ENUMS, [ENUMS_ROW]) == (
        " bool_opt      | bool_result  | action\n"
        "---------------+--------------+---------------\n"
        " (some = true) | (ok = false) | (active = ())"
    )
    assert sql.render_table(ProductType.of(("tuple", ENUMS)), [(ENUMS_ROW,)]).splitlines()[2] == (
        " (bool_opt = (some = true), bool_result = (ok = false), action = (active = ()))"
    )
    assert sql.format_value(option(BOOL), None) == "(none = ())"


def test_unnamed_columns_and_empty_tables():
    schema = ProductType.of(STRING, U256)
    assert (
        sql.render_table(schema, [("a", 0)]) == ' column 0 | column 1\n----------+----------\n "a"      | 0'
    )
    assert sql.render_table(ProductType.of(("id", U32)), []) == " id\n----"
    assert sql.render_table(ProductType(()), []) == ""
    assert sql.format_value(ProductType.of(U8, U8), (1, 2)) == "(col_0 = 1, col_1 = 2)"


def test_floats_and_times():
    assert format_float(1.0) == "1"
    assert format_float(0.1) == "0.1"
    assert format_float(1e16) == "10000000000000000"
    assert format_float(1e-7) == "0.0000001"
    assert format_float(float("nan")) == "NaN"
    assert format_float(float("-inf")) == "-inf"
    assert format_float(-0.0) == "-0"
    assert format_timestamp(Timestamp(1_500_000)) == "1970-01-01T00:00:01.500+00:00"
    assert format_timestamp(Timestamp(1_000_001)) == "1970-01-01T00:00:01.000001+00:00"
    assert format_duration_micros(1000) == "1.00ms"
    assert format_duration_micros(800) == "800.00µs"
    assert format_duration_micros(2_500_000) == "2.50s"


def test_statement_summaries_like_the_cli():
    schema = ProductType.of(("a", I32), ("b", I64))
    assert sql.render_statement(
        schema, [(1, 2)], {"rows_inserted": 1, "rows_deleted": 1, "rows_updated": 1}, 1000
    ) == (" a | b\n---+---\n 1 | 2\n(1 row) [inserted: 1, deleted: 1, updated: 1, server: 1.00ms]")
    assert sql.render_statement(schema, [], {}, 1000) == " a | b\n---+---\n(0 rows) [server: 1.00ms]"
    assert (
        sql.render_statement(ProductType(()), [], {"rows_deleted": 2}, 10)
        == "(0 rows) [deleted: 2, server: 10.00µs]"
    )


def test_render_sql_json_round_trips_the_http_reply():
    ds = Datastore()
    tx = ds.begin_mut_tx()
    schema = tx.create_table(TableDef("t_others", list(zip(OTHERS.names, OTHERS.types, strict=True))))
    tx.insert(schema.table_id, OTHERS_ROW)
    enums = tx.create_table(TableDef("t_enums", list(zip(ENUMS.names, ENUMS.types, strict=True))))
    tx.insert(enums.table_id, ENUMS_ROW)
    ds.commit(tx)
    reply = sql.run_sql(ds, "SELECT * FROM t_others; SELECT * FROM t_enums", Identity(1), True)
    assert sql.render_sql_json(reply) == sql.render_table(OTHERS, [OTHERS_ROW]) + "\n\n" + sql.render_table(
        ENUMS, [ENUMS_ROW]
    )


def test_the_cli_reads_f64_as_upstream_cli_does():
    """Upstream's smoketest `test_sql_format` (crates/smoketests/tests/cluster/sql.rs) stores
    -3454353.345389043278459 and its CLI prints -3454353.345389043: the server sends the shortest round-trip form
    (...0434) and the CLI's serde_json reads it as digits / 10^10, one ulp away. Other values read back exactly."""
    stored = -3454353.345389043278459
    assert repr(stored) == "-3454353.3453890434"
    assert repr(read_f64_as_upstream_cli(stored)) == "-3454353.345389043"
    for exact in (594806.58906, 0.1, 1e-05, 1.5e300, 123.0, -0.0, 5e-324, float("inf")):
        assert read_f64_as_upstream_cli(exact) == exact
    reply = [
        {
            "schema": {"elements": [{"name": {"some": "f_64"}, "algebraic_type": {"F64": []}}]},
            "rows": [[stored]],
        }
    ]
    assert sql.render_sql_json(reply).splitlines()[-1] == " -3454353.345389043"
