"""Child process for the crash test: appends transactions forever and reports every durable offset.

Usage: python crash_child.py <clog dir> <max segment size>. Prints "start <next offset>" once, then one
line per fsync with the new durable offset, until it is killed.
"""

from __future__ import annotations

import hashlib
import os
import sys


def payload_for(offset: int) -> bytes:
    """Deterministic, offset-stamped payload of 10..300 bytes, so any stray or shifted data is detectable."""
    digest = hashlib.blake2b(offset.to_bytes(8, "little"), digest_size=32).digest()
    return offset.to_bytes(8, "little") + digest * (1 + digest[0] % 9) + bytes(digest[1] % 3)


def main() -> None:
    from spacetimedb.commitlog import CommitlogOptions
    from spacetimedb.durability import Durability, DurabilityOptions

    directory, segment_size = sys.argv[1], int(sys.argv[2])
    options = DurabilityOptions(
        commitlog=CommitlogOptions(max_segment_size=segment_size, offset_index_interval_bytes=512),
        queue_capacity=256,
    )
    durability = Durability.open(directory, options)
    out = sys.stdout.fileno()
    durability.add_durable_listener(lambda offset: os.write(out, b"%d\n" % offset))
    offset = durability.next_offset
    os.write(out, b"start %d\n" % offset)
    while True:
        assigned = durability.append_tx(payload_for(offset))
        assert assigned == offset
        offset += 1


if __name__ == "__main__":
    main()
