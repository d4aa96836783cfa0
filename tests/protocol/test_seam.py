"""The server <-> worker messages: every message round-trips, the hand-written Deliveries codec agrees with the
generic one byte for byte, and hostile bytes are refused with SeamViolation, never anything else."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from spacetimedb.protocol import seam
from spacetimedb.protocol.deadline import DEADLINE_SLOT_BYTES, DeadlineSlot
from spacetimedb.sats import ConnectionId, Identity

U64 = st.integers(0, (1 << 64) - 1)
U32 = st.integers(0, (1 << 32) - 1)
deliveries = st.builds(
    seam.Deliveries,
    st.lists(st.builds(seam.Delivery, U64, st.none() | U64, st.binary(max_size=64)), max_size=20).map(tuple),
    st.lists(st.builds(seam.ClientCount, U64, U32), max_size=5).map(tuple),
)


@given(deliveries)
def test_deliveries_fast_codec_matches_the_generic_one(message):
    direction = seam.TO_SERVER_MESSAGES
    framed = seam.encode_to_server(message)
    assert framed[4:] == direction.encode_generic(message)
    assert direction.decode(framed[4:]) == message == direction.decode_generic(framed[4:])


@given(deliveries, st.data())
def test_damaged_deliveries_are_refused_cleanly(message, data):
    body = bytearray(seam.encode_to_server(message)[4:])
    if len(body) > 1:
        cut = data.draw(st.integers(1, len(body) - 1))
        damaged = bytes(body[:cut])
        reader = seam.to_server_reader()
        try:
            decoded = reader.feed(struct.pack("<I", len(damaged)) + damaged)
        except seam.SeamViolation:
            return
        assert decoded != [message]


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_are_a_violation(junk):
    reader = seam.to_server_reader()
    try:
        reader.feed(struct.pack("<I", len(junk)) + junk)
    except seam.SeamViolation:
        pass


def test_every_message_round_trips():
    settings = seam.HostSettings(5_000_000, 30_000_000, 2_000_000, 1000, 1 << 30, 100_000, 16 << 20)
    summary = seam.MigrationSummary(True, False, "plan", "\x1b[1mplan", ("x",))
    to_worker = [
        seam.OpenDatabase(Identity(7), settings, None, ("note",), None),
        seam.CreateDatabase(Identity(7), Identity(8), b"program", settings),
        seam.ValidateProgram(b"new", b"old", settings),
        seam.ReadLog(10),
        seam.ConnectClient(1, Identity(9), ConnectionId(3), seam.CLIENT_PROTOCOL_V3, '{"sub":"x"}'),
        seam.ClientFrame(1, b"\x03frame"),
        seam.DisconnectClient(1),
        seam.CallReducerHttp(2, "send", "[1]", Identity(9), ""),
        seam.HttpAnswer(7, 200, ("content-type",), ("text/plain",), b"body", None),
        seam.HttpAnswer(8, 0, (), (), b"", "refused"),
        seam.RunSql(3, "SELECT 1", Identity(9), ""),
        seam.RunSqlTyped(3, "SELECT * FROM t WHERE a = $1", Identity(9), (seam.SqlParam("text", "7"),)),
        seam.DescribeSql(3, "SELECT 1", Identity(9)),
        seam.UpdateModule(4, b"p"),
        seam.FollowLog(True),
        seam.Shutdown(),
    ]
    to_server = [
        seam.Ready(Identity(8), b"h" * 32, None),
        seam.Starting("loading the module", 30_000_000),
        seam.Validated(b"h", summary),
        seam.ClientAccepted(1, "refused"),
        seam.CallDone(2, seam.CALL_COMMITTED, "", 17, 250, None),
        seam.CallDone(3, seam.CALL_COMMITTED, "", None, 250, "42"),
        seam.HttpFetch(7, "POST", "https://example.com/x", ("a",), ("b",), b"data", 2_000_000),
        seam.UpdateDone(4, None, b"h", summary),
        seam.StatsAnswer(5, seam.DatabaseStats(1, 2, 3, 4, 5)),
        seam.Durable(17),
        seam.SqlRows(
            3,
            (seam.StatementRows("SELECT", b"\x02", (b"\x01", b""), 1, 0, 0, 9),),
            "boom",
            "SqlError",
            4,
            False,
        ),
        seam.SqlDescribed(3, b"\x02\x00", None, None, ""),
    ]
    reader = seam.to_worker_reader()
    assert reader.feed(b"".join(seam.encode_to_worker(m) for m in to_worker)) == to_worker
    reader = seam.to_server_reader()
    assert reader.feed(b"".join(seam.encode_to_server(m) for m in to_server)) == to_server


def test_a_message_may_arrive_in_pieces_and_be_taken_a_few_at_a_time():
    messages = [seam.Durable(n) for n in range(10)]
    data = b"".join(seam.encode_to_server(m) for m in messages)
    reader = seam.to_server_reader()
    assert reader.feed(data[:7]) == []
    assert reader.feed(data[7:], limit=4) == messages[:4]
    assert reader.has_message()
    assert reader.feed(b"") == messages[4:]
    assert not reader.has_message()


def test_an_oversized_length_is_a_violation():
    reader = seam.to_server_reader()
    try:
        reader.feed(struct.pack("<I", seam.MAX_MESSAGE_BYTES + 1))
    except seam.SeamViolation as violation:
        assert "beyond the limit" in str(violation)
    else:
        raise AssertionError("an oversized message was accepted")


def test_the_deadline_slot_says_what_is_overdue():
    import mmap

    slot = DeadlineSlot(mmap.mmap(-1, DEADLINE_SLOT_BYTES))
    assert slot.overdue() is None
    slot.arm(-1.0, "reducer `spin`")
    assert slot.overdue() == "reducer `spin`"
    slot.arm(60.0, "reducer `spin`")
    assert slot.overdue() is None
    slot.disarm()
    assert slot.overdue() is None
    slot.close()


@given(deliveries)
def test_the_builder_makes_what_the_codec_makes(message):
    builder = seam.deliveries_builder()
    for item in message.items:
        builder.add(*item)
    for done in message.frames_done:
        for _ in range(done.count % 4):
            builder.frame_done(done.client)
    counts: dict[int, int] = {}
    for done in message.frames_done:
        if done.count % 4:
            counts[done.client] = counts.get(done.client, 0) + done.count % 4
    expected = seam.Deliveries(message.items, tuple(seam.ClientCount(c, n) for c, n in counts.items()))
    if builder:
        assert builder.build() == seam.encode_to_server(expected)
    else:
        assert expected == seam.Deliveries((), ())


def test_deadline_lanes_share_one_page_and_overdue_looks_at_all():
    import mmap

    page = mmap.mmap(-1, DEADLINE_SLOT_BYTES)
    host = DeadlineSlot(page)
    procedure = host.lane(3)
    procedure.arm_until(100, "slow_procedure")
    host.arm_until(10_000, "a reducer")
    assert host.overdue(now_ns=50) is None
    assert host.overdue(now_ns=200) == "slow_procedure"
    procedure.disarm()
    assert host.overdue(now_ns=200) is None
    assert host.overdue(now_ns=20_000) == "a reducer"
