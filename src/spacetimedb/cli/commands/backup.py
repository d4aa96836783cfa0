"""``spacetime backup`` and ``spacetime restore``: hot backups of a database, and databases made from them.

``backup`` streams ``GET /v1/database/NAME/backup`` into ``FILE.part``, checks the archive (every member against
the manifest's SHA-256) and only then renames it to ``FILE``. ``restore`` checks the archive first too, then
uploads it to ``POST /v1/database/NAME/restore``; the server checks it again before anything changes.
"""

from __future__ import annotations

import http.client as http_client
import json
import os
from pathlib import Path
from typing import Any

import click

from spacetimedb.cli import http
from spacetimedb.cli.commands._database import (
    DatabaseClient,
    confirm,
    database_argument,
    open_database,
    summary,
)
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import json_option, server_option, yes_option
from spacetimedb.sizes import format_size

BACKUP_TIMEOUT_SECONDS = 300.0
_COPY_BYTES = 1 << 20


@click.command("backup")
@database_argument()
@click.option(
    "-o",
    "--out-file",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the archive (a tar file).",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite FILE if it exists.")
@json_option
@server_option
@pass_cli
def backup(
    cli: CliContext, database: str, out_file: Path, force: bool, as_json: bool, server: str | None
) -> None:
    """Write a backup archive of the database NAME to FILE while it keeps serving (only its owner may).

    The archive holds the newest snapshot, the commitlog up to the durable offset when the backup started, and
    the module, with a checksum of each; `spacetime restore` makes a database from it."""
    if out_file.exists() and not force:
        raise CliError(
            f"{out_file} exists", hint="pass -f/--force to overwrite it, or choose another -o FILE"
        )
    client = open_database(cli, server, database)
    partial = out_file.with_name(out_file.name + ".part")
    try:
        offset = _download(client, partial)
        manifest = _verify(partial)
        if manifest.offset != offset:
            raise CliError(f"the archive holds offset {manifest.offset}, the server announced {offset}")
        os.replace(partial, out_file)
    finally:
        partial.unlink(missing_ok=True)
    facts = {
        "database": database,
        "file": str(out_file),
        "offset": manifest.offset,
        "snapshot_offset": manifest.snapshot_offset,
        "size": out_file.stat().st_size,
    }
    if as_json:
        click.echo(json.dumps(facts))
        return
    snapshot = (
        "no snapshot" if manifest.snapshot_offset is None else f"snapshot at {manifest.snapshot_offset}"
    )
    click.echo(
        f"Backed up {database} at transaction offset {manifest.offset} ({snapshot}) to {out_file} "
        f"({format_size(facts['size'])})"
    )


def _download(client: DatabaseClient, target: Path) -> int:
    url = client.url("/backup")
    with http.streaming("GET", url, token=client.token, timeout=BACKUP_TIMEOUT_SECONDS) as response:
        if response.status != 200:
            client.check(http.whole(response, "GET", url))
        offset = int(response.getheader("spacetime-backup-offset") or -1)
        try:
            with open(target, "wb") as file:
                while data := response.read(_COPY_BYTES):
                    file.write(data)
                file.flush()
                os.fsync(file.fileno())
        except (OSError, http_client.HTTPException) as error:
            raise CliError(f"the backup from {client.target.url} broke off: {error}") from None
    return offset


def _verify(path: Path) -> Any:
    from spacetimedb.backup import ArchiveError, verify_archive

    try:
        with open(path, "rb") as file:
            return verify_archive(file)
    except ArchiveError as exc:
        raise CliError(f"{path} is not an intact backup: {exc}") from None


@click.command("restore")
@database_argument()
@click.option(
    "-i",
    "--in-file",
    "in_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="The backup archive (from `spacetime backup`).",
)
@click.option(
    "-c", "--clear", is_flag=True, help="Replace the database NAME if it exists (its data is lost)."
)
@yes_option
@json_option
@server_option
@pass_cli
def restore(
    cli: CliContext,
    database: str,
    in_file: Path,
    clear: bool,
    assume_yes: bool,
    as_json: bool,
    server: str | None,
) -> None:
    """Create the database NAME from a backup archive, or replace it with --clear (only its owner may).

    The archive's checksums are verified first, here and by the server; a damaged archive changes nothing."""
    manifest = _verify(in_file)
    client = open_database(cli, server, database)
    if clear:
        confirm(
            f"Replace database {database} (if it exists) with the backup at offset {manifest.offset}? "
            "Its current data is lost.",
            assume_yes,
            refusal=f"not replacing {database!r}",
            hint="pass -y/--yes to replace it",
        )
    url = client.url("/restore", {"clear": "true"} if clear else None)
    with open(in_file, "rb") as body:
        size = os.fstat(body.fileno()).st_size
        with http.streaming(
            "POST", url, token=client.token, body=body, length=size, timeout=BACKUP_TIMEOUT_SECONDS
        ) as response:
            answer = http.whole(response, "POST", url)
    if answer.status == 409:
        raise CliError(
            f"database {client.shown} exists: {summary(answer.text())}",
            hint="pass -c/--clear to replace it with the backup",
        )
    result = client.check(answer).json()
    if as_json:
        click.echo(json.dumps(result))
        return
    verb = "Replaced" if result.get("op") == "replaced" else "Created"
    click.echo(
        f"{verb} database {database} ({result['database_identity']}) from the backup at transaction offset "
        f"{result['offset']}"
    )
