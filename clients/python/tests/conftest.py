from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
from slotgate_server import MakeOrg, Server, new_id

import slotgate


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real slotgate, on a free port with a fresh data directory, for one test module."""
    srv = Server(Path(tmp_path_factory.mktemp("slotgate")) / "data").start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[slotgate.Client]:
    """A blocking client with the operator key, for setting things up."""
    with slotgate.Client(server.url, server.key) as c:
        yield c


@pytest.fixture
async def client(server: Server) -> AsyncIterator[slotgate.AsyncClient]:
    """An asyncio client with the operator key."""
    async with slotgate.AsyncClient(server.url, server.key) as c:
        yield c


@pytest.fixture
def make_org(admin: slotgate.Client) -> MakeOrg:
    """Creates a fresh org (`limit`, optional reservations per agent) and returns its id."""

    def make(limit: int = 20, **reservations: dict[str, int]) -> str:
        org = new_id("org")
        admin.create_org(org, limit)
        for agent, r in reservations.items():
            admin.set_reservations(org, agent, **r)
        return org

    return make
