"""Upstream's standalone/typescript_index_source_name.rs: a TypeScript module (npm ``spacetimedb`` 2.10.1, published
with ``spacetime publish -p DIR``) updated to a version that adds optional and defaulted columns (one indexed)
after a server restart, and to one that renames the table's accessor (its index keeps working). The modules
follow upstream's in shape: a private ``users`` table with an auto-increment id and a b-tree index on the e-mail
address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.cli_e2e.test_foreign_js import publish
from tests.client.node_tools import NodeTools, node_tools
from tests.smoketests.runtime_helpers import RestartableServer, Smoke

pytestmark = [pytest.mark.slow, pytest.mark.node, pytest.mark.timeout(300)]

USERS_V1 = """
import { schema, table, t } from 'spacetimedb/server';

const AppUsers = table(
  { name: 'users', public: false },
  {
    id: t.u64().primaryKey().autoInc(),
    name: t.string(),
    emailAddress: t.string().index('btree'),
  }
);

const spacetimedb = schema({ AppUsers });
export default spacetimedb;

export const insert_user = spacetimedb.reducer(
  { name: t.string(), emailAddress: t.string() },
  (ctx, { name, emailAddress }) => {
    ctx.db.AppUsers.insert({ id: 0n, name, emailAddress });
  }
);
"""

USERS_WITH_NEW_COLUMNS = """
import { schema, table, t } from 'spacetimedb/server';

const AppUsers = table(
  { name: 'users', public: false },
  {
    id: t.u64().primaryKey().autoInc(),
    name: t.string(),
    emailAddress: t.string().index('btree'),
    age: t.number().optional().default(undefined),
    isActive: t.bool().default(false).index(),
  }
);

const spacetimedb = schema({ AppUsers });
export default spacetimedb;

export const find_user_by_email = spacetimedb.reducer({ emailAddress: t.string() }, (ctx, { emailAddress }) => {
  const found = [...ctx.db.AppUsers.emailAddress.filter(emailAddress)];
  console.info(`matched ${found.length}`);
});

export const find_users_by_active_status = spacetimedb.reducer({ isActive: t.bool() }, (ctx, { isActive }) => {
  const found = [...ctx.db.AppUsers.isActive.filter(isActive)];
  console.info(`matched active users ${found.length}`);
});
"""

USERS_RENAMED_ACCESSOR = """
import { schema, table, t } from 'spacetimedb/server';

const renamedUsers = table(
  { name: 'users', public: false },
  {
    id: t.u64().primaryKey().autoInc(),
    name: t.string(),
    emailAddress: t.string().index('btree'),
  }
);

const spacetimedb = schema({ renamedUsers });
export default spacetimedb;

export const find_user_by_email = spacetimedb.reducer({ emailAddress: t.string() }, (ctx, { emailAddress }) => {
  const found = [...ctx.db.renamedUsers.emailAddress.filter(emailAddress)];
  console.info(`matched ${found.length}`);
});
"""


@pytest.fixture
def tools() -> NodeTools:
    return node_tools(purpose="the TypeScript module smoketests")


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[RestartableServer]:
    with RestartableServer(tmp_path / "data") as server:
        yield server


def write_project(tools: NodeTools, directory: Path, source: str) -> Path:
    """A TypeScript module project (package.json, src/index.ts) whose node_modules is the test's npm cache."""
    (directory / "src").mkdir(parents=True)
    (directory / "package.json").write_text('{"name": "smoke", "private": true, "type": "module"}\n')
    (directory / "src" / "index.ts").write_text(source)
    (directory / "node_modules").symlink_to(tools.node_modules, target_is_directory=True)
    return directory


def deploy(user: User, tools: NodeTools, database: str, directory: Path, source: str) -> Smoke:
    publish(user, tools, database, write_project(tools, directory, source))
    return Smoke(user, database)


def test_typescript_add_optional_columns(tools: NodeTools, restartable: RestartableServer, tmp_path: Path):
    owner = User(tmp_path / "owner", restartable.url)
    smoke = deploy(owner, tools, "ts-add-optional-columns", tmp_path / "v1", USERS_V1)
    smoke.call("insert_user", "Alice", "alice@example.com")
    restartable.restart()
    deploy(owner, tools, smoke.database, tmp_path / "v2", USERS_WITH_NEW_COLUMNS)
    smoke.call("find_user_by_email", "alice@example.com")
    smoke.call("find_users_by_active_status", "false")
    assert smoke.logs(2) == ["matched 1", "matched active users 1"]


def test_typescript_change_index_source_name(
    tools: NodeTools, restartable: RestartableServer, tmp_path: Path
):
    owner = User(tmp_path / "owner", restartable.url)
    smoke = deploy(owner, tools, "ts-change-source-name", tmp_path / "v1", USERS_V1)
    smoke.call("insert_user", "Alice", "alice@example.com")
    deploy(owner, tools, smoke.database, tmp_path / "v2", USERS_RENAMED_ACCESSOR)
    smoke.call("find_user_by_email", "alice@example.com")
    assert smoke.logs(1) == ["matched 1"]
