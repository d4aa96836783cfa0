"""One server per test module: the arena (see ``helpers``)."""

from collections.abc import Iterator

import pytest

from .helpers import Arena, running_arena


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    with running_arena(tmp_path_factory.mktemp("arena")) as running:
        yield running
