"""Upstream's crates/smoketests/tests/standalone/views.rs: both tests start a server on a data directory saved
by upstream v2.6.0 (crates/smoketests/fixtures/stale-view-backing-table-v2.6.0) and check that it repairs the
stale backing tables of views at startup. Neither applies here: the fixture is upstream's on-disk format, and
our views have no backing tables to go stale (a view's result is computed, never stored)."""

from __future__ import annotations

NOT_APPLICABLE = {
    "test_repair_stale_sender_scoped_view_backing_table_on_startup": (
        "a stale on-disk fixture in upstream's format (a v2.6.0 data directory) whose views' stored backing "
        "tables the server repairs at startup; our views store nothing"
    ),
    "test_repair_stale_anonymous_view_backing_table_on_startup": (
        "a stale on-disk fixture in upstream's format (a v2.6.0 data directory) whose views' stored backing "
        "tables the server repairs at startup; our views store nothing"
    ),
}
