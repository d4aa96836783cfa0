"""Hot backup and restore end to end: a backup under 8 writers restores to exactly the state at its offset, and a
damaged archive is refused without changing anything."""

from __future__ import annotations

import asyncio
import io
import struct
import tarfile
import time

import aiohttp
import pytest

from spacetimedb.commitlog import fold_transactions

from .helpers import call, ledger, publish, rows

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


WRITERS = 8
ACCOUNTS = 16
INITIAL = 1_000


class Writer:
    """One client calling ``transfer`` back to back; remembers when each call was acknowledged and how long the
    longest took while a backup ran."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.acknowledged: list[tuple[int, float]] = []  # (seq, monotonic time of the acknowledgement)
        self.latencies: list[tuple[float, float]] = []  # (start, end)

    async def run(
        self, http: aiohttp.ClientSession, url: str, auth: dict[str, str], stop: asyncio.Event
    ) -> None:
        seq = 0
        while not stop.is_set() and seq < 100_000:
            source, target = (self.number + seq) % ACCOUNTS, (self.number * 3 + seq + 1) % ACCOUNTS
            if source == target:
                target = (target + 1) % ACCOUNTS
            started = time.monotonic()
            await call(http, url, "ledger", "transfer", [self.number, seq, source, target, 1 + seq % 7], auth)
            ended = time.monotonic()
            self.acknowledged.append((seq, ended))
            self.latencies.append((started, ended))
            seq += 1


def longest(writers: list[Writer], start: float, end: float) -> float:
    """The longest call that overlapped ``[start, end]``."""
    return max((e - s for w in writers for s, e in w.latencies if e >= start and s <= end), default=0.0)


def test_backup_under_eight_writers_restores_the_state_at_its_offset(ops_server, tmp_path):
    url = ops_server.url
    archive = tmp_path / "ledger.tar"

    async def scenario():
        async with aiohttp.ClientSession() as http:
            auth, identity = await ledger(http, url, ACCOUNTS, INITIAL)
            writers = [Writer(n) for n in range(WRITERS)]
            stop = asyncio.Event()
            tasks = [asyncio.ensure_future(w.run(http, url, auth, stop)) for w in writers]
            await asyncio.sleep(1.5)  # enough transactions for a snapshot and a few segments
            backup_started = time.monotonic()
            async with http.get(f"{url}/v1/database/ledger/backup", headers=auth) as response:
                assert response.status == 200, await response.text()
                offset = int(response.headers["spacetime-backup-offset"])
                archive.write_bytes(await response.read())
            backup_ended = time.monotonic()
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*tasks)
            before = longest(writers, 0, backup_started)
            during = longest(writers, backup_started, backup_ended)
            print(
                f"\nbackup of {archive.stat().st_size} bytes at offset {offset} took {backup_ended - backup_started:.3f}s "
                f"under {WRITERS} writers; longest writer stall: {during * 1000:.1f} ms during the backup, "
                f"{before * 1000:.1f} ms before it"
            )
            async with http.post(
                f"{url}/v1/database/ledger-copy/restore", data=archive.read_bytes(), headers=auth
            ) as response:
                assert response.status == 200, await response.text()
                restored = await response.json()
            assert restored["offset"] == offset and restored["op"] == "created"
            accounts = await rows(http, url, "ledger-copy", "SELECT * FROM account", auth)
            receipts = await rows(http, url, "ledger-copy", "SELECT * FROM receipt", auth)
            return identity, offset, writers, backup_started, accounts, receipts

    identity, offset, writers, backup_started, accounts, receipts = asyncio.run(scenario())
    ops_server.stop()

    # the ledger adds up: money moved, none made or lost, and every balance is what its receipts say
    assert sum(balance for _, balance in accounts) == ACCOUNTS * INITIAL
    expected = {account: INITIAL for account in range(ACCOUNTS)}
    for _id, _writer, _seq, source, target, amount in receipts:
        expected[source] -= amount
        expected[target] += amount
    assert dict(accounts) == expected
    # every call acknowledged before the backup started is in it
    present = {(writer, seq) for _id, writer, seq, *_ in receipts}
    acknowledged = {(w.number, seq) for w in writers for seq, at in w.acknowledged if at < backup_started}
    assert acknowledged <= present
    # and exactly the transfers the source database's log holds up to the archive's offset
    logged = set()

    def visit(tx_offset: int, record) -> None:
        if tx_offset <= offset and record.inputs is not None and record.inputs.reducer_name == "transfer":
            logged.add(struct.unpack_from("<II", record.inputs.args))

    fold_transactions(ops_server.data_dir / "databases" / identity / "clog", 0, visit)
    assert present == logged
    assert len(present) > len(acknowledged) // 2 > 0


def _corrupt(data: bytes, member: str) -> bytes:
    """The archive with one byte flipped in the middle of ``member``'s contents."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        info = tar.getmember(member)
    damaged = bytearray(data)
    damaged[info.offset_data + info.size // 2] ^= 0x20
    return bytes(damaged)


def _with_extra_member(data: bytes, name: str) -> bytes:
    """The archive's members plus a hostile one, before the manifest."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as source, tarfile.open(fileobj=out, mode="w") as target:
        for member in source.getmembers():
            if member.name == "manifest.json":
                extra = tarfile.TarInfo(name)
                extra.size = 5
                target.addfile(extra, io.BytesIO(b"owned"))
            target.addfile(member, source.extractfile(member))
    return out.getvalue()


def test_a_damaged_archive_is_refused_and_changes_nothing(ops_server):
    url = ops_server.url

    async def scenario():
        async with aiohttp.ClientSession() as http:
            auth, _ = await ledger(http, url, 4, INITIAL)
            for seq in range(200):
                await call(http, url, "ledger", "transfer", [0, seq, seq % 4, (seq + 1) % 4, 1], auth)
            async with http.get(f"{url}/v1/database/ledger/backup", headers=auth) as response:
                good = await response.read()
            with tarfile.open(fileobj=io.BytesIO(good)) as tar:
                names = tar.getnames()
            assert names[-1] == "manifest.json" and any(n.startswith("snapshots/") for n in names)
            segment = next(n for n in names if n.startswith("clog/"))
            # a neighbour that a clear would replace, and its state
            await publish(http, url, "neighbour", auth)
            await call(http, url, "neighbour", "seed", [2, 7], auth)
            neighbour = await rows(http, url, "neighbour", "SELECT * FROM account", auth)
            damaged = {
                "a flipped byte in the log": (_corrupt(good, segment), "fails its checksum"),
                "a flipped byte in the snapshot": (
                    _corrupt(good, next(n for n in names if n.startswith("snapshots/"))),
                    "fails its checksum",
                ),
                "a flipped byte in the manifest": (_corrupt(good, "manifest.json"), "manifest"),
                "cut in a member": (good[: len(good) // 2], "truncated"),
                "cut before the manifest": (good[: _offset_of(good, "manifest.json") - 512], "no manifest"),
                "a path outside the database": (
                    _with_extra_member(good, "../../escape"),
                    "unexpected member",
                ),
                "a stray member": (
                    _with_extra_member(good, "clog/00000000000000000999.stdb.log"),
                    "does not list",
                ),
                "not an archive": (b"hello" * 1000, "damaged or truncated"),
            }
            for case, (body, reason) in damaged.items():
                for target, params in (("fresh", {}), ("neighbour", {"clear": "true"})):
                    async with http.post(
                        f"{url}/v1/database/{target}/restore", data=body, headers=auth, params=params
                    ) as response:
                        text = await response.text()
                        assert response.status == 400, (case, text)
                        assert reason in text, (case, text)
            async with http.get(f"{url}/v1/database/fresh", headers=auth) as response:
                assert response.status == 404
            assert await rows(http, url, "neighbour", "SELECT * FROM account", auth) == neighbour
            # the intact archive still restores over the neighbour, with --clear only
            async with http.post(f"{url}/v1/database/neighbour/restore", data=good, headers=auth) as response:
                assert response.status == 409
            async with http.post(
                f"{url}/v1/database/neighbour/restore", data=good, headers=auth, params={"clear": "true"}
            ) as response:
                assert response.status == 200, await response.text()
            restored = await rows(http, url, "neighbour", "SELECT * FROM receipt", auth)
            assert sorted(restored) == sorted(await rows(http, url, "ledger", "SELECT * FROM receipt", auth))
            assert len(restored) == 200

    asyncio.run(scenario())
    leftovers = [p.name for p in (ops_server.data_dir / "databases").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def _offset_of(data: bytes, member: str) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmember(member).offset_data
