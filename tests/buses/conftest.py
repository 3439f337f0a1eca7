"""Real brokers for the bus tests: one `redis-server` and one `nats-server -js` per session.

Each test gets its own key prefix / stream name, so tests never see each
other's runs. Tests that stop or cut a broker start their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

import runstream as rs
from _support.brokers import Server, nats_server, redis_server
from runstream._ids import new_id


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url + "/0"


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with nats_server() as server:
        yield server.url


@pytest.fixture
def redis_broker() -> Iterator[Server]:
    """A Redis of this test's own, to cut or stop."""
    with redis_server() as server:
        yield server


@pytest.fixture
def nats_broker() -> Iterator[Server]:
    """A NATS of this test's own, to restart."""
    with nats_server() as server:
        yield server


def fresh_name() -> str:
    return "t" + new_id()[:10]


@pytest.fixture(params=["memory", "redis", "nats"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[rs.buses.WorkBus]:
    """Each kind of bus, connected, with names of this test's own."""
    kind = request.param
    if kind == "memory":
        made: rs.buses.WorkBus = rs.MemoryBus()
    elif kind == "redis":
        made = rs.RedisBus(request.getfixturevalue("redis_url"), prefix=fresh_name())
    else:
        name = fresh_name()
        made = rs.NatsBus(request.getfixturevalue("nats_url"), stream=name.upper(), prefix=name)
    await made.connect()
    try:
        yield made
    finally:
        await made.aclose()
