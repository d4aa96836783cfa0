"""What the front end answers itself, without a database: the server parameters it reports at startup, the probes
drivers and ``psql`` send (``SELECT version()``, ``SHOW`` of a server setting) and transaction control, which is
accepted as a no-op with a notice (each statement runs in its own transaction, as upstream)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

# a PostgreSQL version first: drivers parse it (libpq's PQserverVersion, asyncpg) to pick features
SERVER_VERSION = "16.0"


def product_version() -> str:
    try:
        return metadata.version("spacetimedb-py")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "unknown"


def server_parameters(application_name: str) -> dict[str, str]:
    """The ``ParameterStatus`` values sent after authentication (those PostgreSQL always reports)."""
    return {
        "server_version": f"{SERVER_VERSION} (SpacetimeDB-py {product_version()})",
        "server_encoding": "UTF8",
        "client_encoding": "UTF8",
        "DateStyle": "ISO, MDY",
        "IntervalStyle": "postgres",
        "TimeZone": "UTC",
        "integer_datetimes": "on",
        "standard_conforming_strings": "on",
        "is_superuser": "off",
        "session_authorization": "spacetime",
        "application_name": application_name,
        "default_transaction_read_only": "off",
        "in_hot_standby": "off",
    }


_SETTINGS_ALSO = {
    "transaction_isolation": "serializable",
    "default_transaction_isolation": "serializable",
    "transaction_read_only": "off",
    "search_path": "public",
    "max_identifier_length": "63",
    "lc_collate": "C",
    "lc_ctype": "C",
    "server_version_num": f"{int(float(SERVER_VERSION)) * 10000}",
}

NOTICE_NO_TRANSACTIONS = (
    "SpacetimeDB does not support transactions over the PostgreSQL protocol: each statement runs in its own "
    "transaction, so {command} does nothing"
)


@dataclass(frozen=True, slots=True)
class LocalAnswer:
    """An answer made here: a command tag, and either one text column and row, or a notice."""

    tag: str
    column: str | None = None
    value: str | None = None
    notice: str | None = None


_TRANSACTION = re.compile(
    r"(?P<cmd>begin|start|commit|end|rollback|abort)(\s+(transaction|work)\b.*|\s+(isolation|read|not|deferrable)\b.*)?",
    re.IGNORECASE | re.DOTALL,
)
_TAGS = {"begin": "BEGIN", "start": "START TRANSACTION", "commit": "COMMIT", "end": "COMMIT"}
_SHOW = re.compile(r"show\s+(?P<name>\"?[A-Za-z_][A-Za-z0-9_]*\"?)", re.IGNORECASE)
_VERSION = re.compile(r"select\s+(pg_catalog\s*\.\s*)?version\s*\(\s*\)", re.IGNORECASE)
_CURRENT_SETTING = re.compile(
    r"select\s+(pg_catalog\s*\.\s*)?current_setting\s*\(\s*'(?P<name>\w+)'\s*\)", re.IGNORECASE
)


def local_answer(query: str, application_name: str = "") -> LocalAnswer | None:
    """The answer to ``query`` when it is one this front end makes itself (the whole query, one statement)."""
    text = query.strip().rstrip(";").strip()
    if ";" in text:
        return None
    match = _TRANSACTION.fullmatch(text)
    if match is not None:
        command = match.group("cmd").lower()
        tag = _TAGS.get(command, "ROLLBACK")
        return LocalAnswer(tag, notice=NOTICE_NO_TRANSACTIONS.format(command=tag))
    if _VERSION.fullmatch(text):
        return LocalAnswer("SELECT 1", "version", version_text())
    match = _SHOW.fullmatch(text) or _CURRENT_SETTING.fullmatch(text)
    if match is not None:
        name = match.group("name").strip('"')
        value = setting(name, application_name)
        if value is not None:
            column = name if match.re is _SHOW else "current_setting"
            return LocalAnswer("SHOW" if match.re is _SHOW else "SELECT 1", column, value)
    return None


def setting(name: str, application_name: str) -> str | None:
    """A PostgreSQL server setting's value, matched without regard to case (None: not one we report)."""
    known = {**server_parameters(application_name), **_SETTINGS_ALSO}
    for key, value in known.items():
        if key.lower() == name.lower():
            return value
    return None


def version_text() -> str:
    return f"PostgreSQL {SERVER_VERSION} (SpacetimeDB-py {product_version()}, PostgreSQL wire protocol 3.0)"


_CATALOG = re.compile(r"\b(pg_catalog|information_schema)\s*\.", re.IGNORECASE)
CATALOG_UNSUPPORTED = (
    "PostgreSQL's catalog (pg_catalog, information_schema; what psql's \\d commands read) is not supported: "
    "query SpacetimeDB's system tables instead, such as st_table and st_column"
)


def reads_pg_catalog(query: str) -> bool:
    """Whether ``query`` reads PostgreSQL's catalog, which a SpacetimeDB database does not have."""
    return _CATALOG.search(query) is not None
