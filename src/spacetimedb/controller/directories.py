"""The ``databases`` directory: which entries are live databases, which are work in progress, and how a restart
finishes or undoes what a crash interrupted.

``{hex}`` is a live database (its identity in hex). Beside it, only the supervisor makes entries, each named
``.{state}-{hex}-{random}``:

- ``.staging-``: a database being created by a throw-away worker (the data of a ``publish --clear``);
- ``.ready-``: that creation finished and its worker stopped cleanly, so everything in it is durable. Only the
  server renames a staging directory to this, and a worker cannot (it may write only beneath its own
  directory), so module code cannot pass an unfinished creation off as finished;
- ``.replaced-``: the old database, moved aside by the swap of a clear (``{hex}`` → replaced, ready → ``{hex}``);
- ``.deleting-``: a database being deleted.

A clear takes effect with the rename of its ready directory to ``{hex}``; until then the old database is the
live one. Recovery (``recover``) decides from the names alone, because the server never opens a file inside a
database's directory (a module can plant links there): listing, renaming and removing (``shutil.rmtree`` does not
follow links) are safe.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Collection
from pathlib import Path

from spacetimedb.fsutil import fsync_directory

log = logging.getLogger(__name__)

STAGING = "staging"
READY = "ready"
REPLACED = "replaced"
DELETING = "deleting"
_LIVE_NAME = re.compile(r"^[0-9a-f]{64}$")
_SIDE_NAME = re.compile(r"^\.(staging|ready|replaced|deleting)-([0-9a-f]{64})-[0-9a-f]+$")
# what an entry in each state holds once recovery removes it
_REMOVED = {
    STAGING: "an unfinished database creation",
    READY: "the new data of a clear that never took effect",
    REPLACED: "the old data of a finished clear",
    DELETING: "the rest of a deleted database",
}


def side_path(live: Path, state: str) -> Path:
    """A fresh entry beside the live directory ``live`` in ``state``."""
    return live.with_name(f".{state}-{live.name}-{uuid.uuid4().hex[:8]}")


def rename_durably(source: Path, target: Path) -> None:
    source.rename(target)
    fsync_directory(target.parent)


def remove_side_entry(path: Path) -> None:
    """Remove an entry the supervisor made beside the live databases (links inside are removed, not followed)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def delete_database_dir(live: Path) -> None:
    """Delete the database directory ``live``: renamed ``.deleting-`` first, so that it is gone from the database
    list at once even if the removal is cut short (``recover`` finishes it)."""
    doomed = side_path(live, DELETING)
    rename_durably(live, doomed)
    remove_side_entry(doomed)


def swap_in(live: Path, ready: Path) -> None:
    """Make the finished database in ``ready`` the live one at ``live``, and remove the old one.

    Two renames, each made durable before the next: ``live`` → replaced, then ``ready`` → ``live``. A crash
    between them leaves no ``live`` and a ready directory, which ``recover`` promotes."""
    replaced = side_path(live, REPLACED)
    rename_durably(live, replaced)
    try:
        ready.rename(live)
    except BaseException:
        rename_durably(replaced, live)
        raise
    fsync_directory(live.parent)
    remove_side_entry(replaced)


def recover(databases: Path) -> None:
    """Finish or undo, from the entries' names, whatever a crash interrupted; log each action.

    Unfinished creations are removed; a finished one whose database is missing (the crash fell between the two
    renames of the swap) becomes the live database, any other is dropped (the clear never took effect); an old
    database moved aside is restored if nothing replaced it and removed otherwise; deletions are finished."""
    entries = _side_entries(databases)
    for state in (STAGING, READY, REPLACED, DELETING):
        for path, identity_hex in entries.get(state, []):
            _recover_entry(databases, state, path, identity_hex)


def _side_entries(databases: Path) -> dict[str, list[tuple[Path, str]]]:
    found: dict[str, list[tuple[Path, str]]] = {}
    for path in sorted(databases.iterdir()):
        match = _SIDE_NAME.match(path.name)
        if match is not None:
            found.setdefault(match.group(1), []).append((path, match.group(2)))
    return found


def _recover_entry(databases: Path, state: str, path: Path, identity_hex: str) -> None:
    live = databases / identity_hex
    if state in (READY, REPLACED) and not os.path.lexists(live):
        rename_durably(path, live)
        what = "finished the interrupted clear of" if state == READY else "restored the data of"
        log.warning("%s database %s (the server stopped during a publish --clear)", what, identity_hex)
        return
    remove_side_entry(path)
    log.warning("removed %s for database %s: %s", _REMOVED[state], identity_hex, path.name)


def remove_orphans(databases: Path, known: Collection[str]) -> list[str]:
    """Remove every live-looking database directory whose identity (hex) is not in ``known`` (the control
    database's): the rest of a creation the server did not finish recording, or of a deletion it did not finish.
    Returns the identities removed."""
    orphans = [
        path
        for path in sorted(databases.iterdir())
        if _LIVE_NAME.match(path.name) and path.name not in known and not path.is_symlink()
    ]
    for path in orphans:
        delete_database_dir(path)
        log.warning("removed database directory %s: the control database does not know it", path.name)
    return [path.name for path in orphans]
