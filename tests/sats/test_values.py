import datetime as dt

import pytest

from spacetimedb.sats import ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp


def test_identity_hex_and_order():
    ident = Identity.from_hex("0x" + "00" * 31 + "ff")
    assert ident.to_hex() == "00" * 31 + "ff"
    assert ident.to_le_bytes()[0] == 0xFF
    assert Identity.from_le_bytes(ident.to_le_bytes()) == ident
    assert Identity(1) < Identity(2) and len({Identity(1), Identity(1)}) == 1
    assert Identity(1) != ConnectionId(1)
    with pytest.raises(ValueError):
        Identity.from_hex("abc")
    with pytest.raises(ValueError):
        Identity(-1)


def test_timestamp_iso_and_arithmetic():
    ts = Timestamp.parse("2024-01-02T03:04:05.000006Z")
    assert ts.isoformat() == "2024-01-02T03:04:05.000006+00:00"
    assert ts.to_datetime() == dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    later = ts + TimeDuration.from_seconds(1.5)
    assert later - ts == TimeDuration(1_500_000)
    assert sorted([later, ts]) == [ts, later]
    assert str(TimeDuration(-1_500_000)) == "-1.500000"


def test_schedule_at_constructors():
    assert ScheduleAt.interval(2).value == TimeDuration(2_000_000)
    assert ScheduleAt.time(Timestamp(5)).tag == 1
    with pytest.raises(TypeError):
        ScheduleAt.time(5)  # type: ignore[arg-type]
    assert ConnectionId.random() != ConnectionId.zero()
