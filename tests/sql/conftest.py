import pytest

from spacetimedb.datastore import Datastore

from .fixtures import build_db


@pytest.fixture
def ds() -> Datastore:
    return build_db()
