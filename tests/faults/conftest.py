"""One warm fork server (fork_server.py) for the whole fault suite."""

import pytest

from fault_harness import Runner


@pytest.fixture(scope="session")
def runner():
    r = Runner()
    yield r
    r.close()
