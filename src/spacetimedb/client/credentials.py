"""A per-user token file, like the official SDKs' credential stores, so a client keeps its identity.

``Credentials("quickstart-chat")`` keeps the token in ``~/.spacetimedb_client_credentials/quickstart-chat``
(the directory can be moved with ``SPACETIMEDB_CLIENT_CREDENTIALS_DIR``). Typical use::

    creds = Credentials("quickstart-chat")
    DbConnection.builder().with_token(creds.load()).on_connect(lambda conn, identity, token: creds.save(token))

The file is written atomically and readable by its owner only: a token is a password.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

CREDENTIALS_DIR_ENV = "SPACETIMEDB_CLIENT_CREDENTIALS_DIR"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def credentials_dir() -> Path:
    configured = os.environ.get(CREDENTIALS_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".spacetimedb_client_credentials"


class Credentials:
    """The saved token of one application (``name``: letters, digits, ``.``, ``_``, ``-``)."""

    def __init__(self, name: str, directory: str | os.PathLike[str] | None = None) -> None:
        if not _SAFE_NAME.match(name):
            raise ValueError(f"invalid credentials name {name!r}: use letters, digits, '.', '_' and '-'")
        self.path = Path(directory).expanduser() / name if directory is not None else credentials_dir() / name

    def load(self) -> str | None:
        """The saved token, or None if there is none."""
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return token or None

    def save(self, token: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(token + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        """Forget the token (the next connection gets a new identity)."""
        self.path.unlink(missing_ok=True)
