"""Upstream's cluster/http_egress.rs: a procedure's request to a private address is refused, with upstream's
wording; the module http-egress rewritten in Python."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.egress_module import HTTP_EGRESS
from tests.smoketests.runtime_helpers import publish

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_http_disallowed_ip_is_blocked(
    alice: User, db_name: str, python_module: Callable[[str], Path]
) -> None:
    """Upstream test_http_disallowed_ip_is_blocked: `ctx.http.get("http://10.0.0.1:80/")` fails with "refusing
    to connect to private or special-purpose addresses" (the procedure succeeds only on that error)."""
    smoke = publish(alice, db_name, python_module(HTTP_EGRESS))
    smoke.call("request_disallowed_ip", "http://10.0.0.1:80/")
