"""Procedures, event tables and ``ctx.sender_auth`` in the host, without a server (no HTTP egress here)."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import pytest

from spacetimedb.host.database import Database
from spacetimedb.host.procedures import ProcedureOutcome, ProcedureRequest
from spacetimedb.module import AuthCtx, HttpResponse, load_module, plan_migration
from spacetimedb.protocol.messages import COMMITTED, FAILED, INTERNAL_ERROR
from spacetimedb.sats import ConnectionId

from .helpers import DB, OWNER, call, ident, rows, wait_until

PROGRAM = (Path(__file__).parent / "procedures_module.py").read_bytes()


@pytest.fixture
def database(tmp_path: Path):
    database = Database.create(tmp_path / "db", DB, OWNER, PROGRAM)
    yield database
    database.shutdown()


def run_procedure(database: Database, name: str, *args, auth: AuthCtx | None = None) -> ProcedureOutcome:
    done: Future[ProcedureOutcome] = Future()
    request = ProcedureRequest(
        name, list(args), True, OWNER, ConnectionId(7), auth or AuthCtx(None), done.set_result
    )
    database.procedures.call(request)
    return done.result(10)


def test_a_procedure_returns_its_value(database: Database) -> None:
    outcome = run_procedure(database, "add_two", 40, 2)
    assert outcome.status == COMMITTED
    assert outcome.value == 42 and outcome.value_json() == 42
    assert outcome.value_bsatn() == (42).to_bytes(8, "little")


def test_a_failing_with_tx_rolls_back_alone(database: Database) -> None:
    outcome = run_procedure(database, "insert_then_fail", "kept")
    assert outcome.status == COMMITTED, outcome.message
    assert outcome.value == 1
    assert [row[1] for row in rows(database.host, "quote")] == ["kept"]


def test_errors_of_procedures_reach_the_caller(database: Database) -> None:
    crashed = run_procedure(database, "crash")
    assert crashed.status == FAILED and "procedure failed on purpose" in (crashed.message or "")
    no_db = run_procedure(database, "use_db")
    assert no_db.status == FAILED and "has no ctx.db" in (no_db.message or "")
    unknown = run_procedure(database, "nope")
    assert unknown.status == INTERNAL_ERROR and "no such procedure" in (unknown.message or "")
    bad_args = run_procedure(database, "add_two", "x", 1)
    assert bad_args.status == INTERNAL_ERROR and "invalid arguments for procedure `add_two`" in (
        bad_args.message or ""
    )
    assert "procedure failed on purpose" in "\n".join(database.module_log.tail(20))


def test_what_a_procedure_logs_is_in_the_module_log_as_its_own(database: Database) -> None:
    # procedure threads had no log sink: their lines went to stderr, which a worker process discards
    assert run_procedure(database, "ring", {"scheduled_id": 9, "at": {"Interval": {"__time_duration_micros__": 1}},
                                           "text": "direct"}).status == COMMITTED  # fmt: skip
    records = [json.loads(line) for line in database.module_log.tail(5)]
    assert any(r["message"] == "ringing: direct" and r["function"] == "ring" for r in records), records


def test_a_scheduled_procedure_runs_after_its_one_shot_row_is_deleted(database: Database) -> None:
    # upstream's order (cluster/schedule_reducer.rs, test_scheduled_procedure_table_and_view_subscription): the
    # row goes in a transaction of its own, then the procedure runs outside any transaction
    assert call(database.host, "set_alarm", "wake up").status == COMMITTED
    assert wait_until(lambda: [row[1] for row in rows(database.host, "quote")] == ["wake up"])
    assert rows(database.host, "alarm") == []
    assert any("ringing: wake up" in line for line in database.module_log.tail(5))


def test_http_goes_through_the_send_hook_and_the_answer_comes_back(database: Database) -> None:
    sent = []

    def send(fetch: int, request) -> None:
        sent.append(request)
        database.procedures.http_answer(fetch, HttpResponse(200, (("x", "y"),), b"fine"), None)

    database.procedures.send_http = send
    outcome = run_procedure(database, "fetch_status", "http://example.com/a", 1.5)
    assert outcome.value == "200 fine"
    assert sent[0].method == "GET" and sent[0].url == "http://example.com/a" and sent[0].timeout == 1.5

    def refuse(fetch: int, request) -> None:
        database.procedures.http_answer(
            fetch, None, "the server does not allow requests to host `example.com`"
        )

    database.procedures.send_http = refuse
    outcome = run_procedure(database, "fetch_status", "http://example.com/a", 1.5)
    assert outcome.value == "error: the server does not allow requests to host `example.com`"


def test_waiting_on_http_does_not_count_against_the_budget(tmp_path: Path) -> None:
    from spacetimedb.host.database import DatabaseOptions
    from spacetimedb.host.module_host import HostOptions

    database = Database.create(tmp_path / "slow", DB, OWNER, PROGRAM, DatabaseOptions(HostOptions(0.3)))
    try:
        import threading

        def send_late(fetch: int, request) -> None:  # answers after twice the budget
            timer = threading.Timer(0.6, database.procedures.http_answer, (fetch, HttpResponse(204), None))
            timer.start()

        database.procedures.send_http = send_late
        outcome = run_procedure(database, "fetch_status", "http://example.com/", 5.0)
        assert outcome.status == COMMITTED and outcome.value == "204 "
    finally:
        database.shutdown()


def test_event_rows_reach_subscribers_and_are_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "events"
    database = Database.create(path, DB, OWNER, PROGRAM)
    seen = []
    database.host.add_transaction_listener(lambda event: seen.append(event))
    with database.db.read_tx() as tx:
        database.host.subscriptions.subscribe(1, 0, ["SELECT * FROM damage"], OWNER, True, tx)
    try:
        outcome = call(database.host, "hit", {"__identity__": "0x" + ident(1).to_hex()}, 5)
        assert outcome.ok, outcome.message
        (event,) = seen
        ((_, delta),) = event.updates.updates[1]
        assert delta.is_event and len(delta.inserts) == 1 and not delta.deletes
        assert rows(database.host, "damage") == []
        offset = database.db.next_offset
    finally:
        database.shutdown()
    reopened = Database.open(path, DB)
    try:
        assert rows(reopened.host, "damage") == []
        assert reopened.db.next_offset == offset  # the event-only transaction was never logged
    finally:
        reopened.shutdown()


def test_sender_auth_carries_the_token_claims(database: Database) -> None:
    payload = json.dumps({"iss": "https://issuer.example", "sub": "user-1", "aud": ["app"], "role": "admin"})
    outcome = call(database.host, "record_caller", auth=AuthCtx(payload))
    assert outcome.ok, outcome.message
    outcome = call(database.host, "record_caller")  # no credentials: an internal call
    assert outcome.ok, outcome.message
    assert [row[1:] for row in rows(database.host, "caller")] == [
        ("https://issuer.example", "user-1", False),
        ("", "", True),
    ]
    auth = AuthCtx(payload)
    assert auth.audience == ["app"] and auth.claims["role"] == "admin" and auth.has_jwt


def test_adding_and_removing_procedures_is_an_automatic_update() -> None:
    old = load_module(PROGRAM).module_def
    new = load_module(PROGRAM.replace(b"def crash(", b"def crash_renamed(")).module_def
    plan = plan_migration(old, new)
    assert plan.is_automatic and not plan.changes_schema
    assert {s.text for s in plan.steps} == {"Removed procedure crash", "Created procedure crash_renamed"}
    event_off = load_module(PROGRAM.replace(b"event=True", b"event=False")).module_def
    assert not plan_migration(old, event_off).is_automatic


def test_too_many_waiting_calls_are_refused_at_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spacetimedb.host import procedures

    monkeypatch.setattr(procedures, "MAX_WAITING_CALLS", 0)
    outcome = run_procedure(database, "add_two", 1, 2)
    assert outcome.status == INTERNAL_ERROR and "too many procedure calls are waiting" in (
        outcome.message or ""
    )


def test_a_procedure_that_spins_is_stopped_at_its_budget(tmp_path: Path) -> None:
    from spacetimedb.host.database import DatabaseOptions
    from spacetimedb.host.module_host import HostOptions
    from spacetimedb.protocol.messages import OUT_OF_BUDGET

    database = Database.create(tmp_path / "spin", DB, OWNER, PROGRAM, DatabaseOptions(HostOptions(0.2)))
    try:
        outcome = run_procedure(database, "spin")
        assert outcome.status == OUT_OF_BUDGET and "ran out of its time budget (0.2s)" in (
            outcome.message or ""
        )
        assert run_procedure(database, "add_two", 1, 2).value == 3  # the thread is free again
    finally:
        database.shutdown()
