"""A run goes on through a cut bus connection (Redis) and a broker restart (NATS)."""

from __future__ import annotations

import gc
import warnings

import anyio
import pytest
import redis.asyncio as redis

import runstream as rs
from _support.apps import graphs
from _support.brokers import Server
from _support.invariants import check_invariants
from _support.watch import Watched

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

N = 2000  # ticks, with a pause every 100 so the fault lands mid-run


async def run_through(bus: rs.buses.WorkBus, fault: object) -> None:
    """Run the ticker and read it live while `fault()` strikes after 500 events."""
    async with rs.Runtime(graphs, bus=bus) as rt:
        run_id = await rt.start("ticker", {"n": N, "every": 100, "pause": 0.02})
        seen = Watched()
        attachment = await rt.subscribe(run_id, seen)
        await seen.reached(500)
        await fault()  # type: ignore[operator]
        await attachment.wait()
        record = await rt.wait(run_id)
    events = seen.items
    assert [e.seq for e in events] == list(range(len(events)))  # none lost, none twice
    assert sum(e.type == "custom" for e in events) == N
    assert record.status == "completed"
    assert record.events == len(events)
    check_invariants(events)


async def test_client_kill_of_every_bus_connection_loses_nothing(redis_broker: Server) -> None:
    url = redis_broker.url + "/0"
    bus = rs.RedisBus(url, prefix="cut")

    async def kill_clients() -> None:
        admin = redis.Redis.from_url(url)
        try:
            killed = await admin.client_kill_filter(_type="normal", skipme=True)
            assert killed >= 1
        finally:
            await admin.aclose()

    await run_through(bus, kill_clients)
    await bus.aclose()


async def test_a_nats_server_restart_with_its_store_loses_nothing(nats_broker: Server) -> None:
    bus = rs.NatsBus(nats_broker.url, stream="RESTART", prefix="restart")

    async def restart() -> None:
        await anyio.to_thread.run_sync(nats_broker.stop)
        await anyio.sleep(0.5)  # the outage: the run's emits wait meanwhile
        # Started from this (the main) thread: a broker dies with the thread that
        # started it (_support.brokers), and a worker thread may end any time.
        nats_broker.start(nats_broker.port)

    await run_through(bus, restart)
    await bus.aclose()
    # The socket of the connection the restart broke is left to the garbage
    # collector (by nats-py's reconnect, as far as traced so far): collect it
    # here, so that its ResourceWarning is not blamed on a later test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
