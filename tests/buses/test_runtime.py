"""`Runtime` in one process, on every bus: start, read, cancel, wait, roles, global sinks."""

from __future__ import annotations

from typing import Any

import pytest

import runstream as rs
from _support.apps import graphs, ticker
from _support.invariants import check_invariants
from _support.watch import Watched, eventually
from runstream.buses import WorkBus

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_a_run_started_is_read_whole_and_resumed_exactly(bus: WorkBus) -> None:
    async with rs.Runtime(graphs, bus=bus) as rt:
        run_id = await rt.start("ticker", {"n": 50}, thread_id="t1", owner="ann")
        events = [e async for e in rt.events(run_id)]
        assert [e.seq for e in events] == list(range(len(events)))
        check_invariants(events)
        assert [e async for e in rt.events(run_id, after=20)] == events[21:]
        record = await rt.wait(run_id)
        assert (record.graph, record.owner, record.thread_id) == ("ticker", "ann", "t1")
        assert (record.status, record.events) == ("completed", len(events))
        assert await rt.status(run_id) == record


async def test_a_failed_run_ends_its_stream_with_run_failed(bus: WorkBus) -> None:
    async with rs.Runtime(graphs, bus=bus) as rt:
        run_id = await rt.start("ticker", {"n": 10, "fail_at": 4})
        seen = rs.MemorySink[rs.Event]()
        with pytest.raises(rs.RunFailed, match="failed at tick 4"):
            await rs.drain(rt.events(run_id), seen)
        assert seen.items[-1].type == "workflow"
        assert (await rt.wait(run_id)).status == "failed"


async def test_an_api_process_queues_and_a_worker_executes(bus: WorkBus) -> None:
    async with (
        rs.Runtime(graphs, bus=bus, role="api") as api,
        rs.Runtime(graphs, bus=bus, role="worker", concurrency=2) as worker,
    ):
        run_ids = [await api.start("ticker", {"n": 20}) for _ in range(5)]
        assert api.executing == 0
        for run_id in run_ids:
            record = await api.wait(run_id)
            events = [e async for e in api.events(run_id)]
            assert (record.status, record.events) == ("completed", len(events))
            assert sum(e.type == "custom" for e in events) == 20
            check_invariants(events)
        assert worker.executing == 0


async def test_cancel_from_one_process_stops_a_run_on_another(bus: WorkBus) -> None:
    async with (
        rs.Runtime(graphs, bus=bus, role="api") as api,
        rs.Runtime(graphs, bus=bus, role="worker") as worker,
    ):
        run_id = await api.start("ticker", {"n": 10, "hang_at": 5})
        seen = Watched()
        attachment = await api.subscribe(run_id, seen)
        await seen.reached(6)  # the run hangs at tick 5
        assert worker.executing == 1
        await api.cancel(run_id)
        await attachment.wait()
        assert seen.items[-1].type == "workflow"
        assert (await api.wait(run_id)).status == "canceled"
        check_invariants(seen.items)


async def test_a_queued_run_cancelled_before_a_worker_takes_it_ends_at_once(
    bus: WorkBus,
) -> None:
    async with rs.Runtime(graphs, bus=bus, role="api") as api:
        run_id = await api.start("ticker", {"n": 10})
        assert (await api.status(run_id)).status == "queued"  # type: ignore[union-attr]
        await api.cancel(run_id)
        async with rs.Runtime(graphs, bus=bus, role="worker"):
            assert (await api.wait(run_id)).status == "canceled"


async def test_global_sinks_see_every_event_of_every_run_and_close_once(bus: WorkBus) -> None:
    audit = rs.MemorySink[rs.Event]()
    async with rs.Runtime(graphs, bus=bus, sinks=(audit,)) as rt:
        run_ids = [await rt.start("ticker", {"n": 30, "every": 5}) for _ in range(4)]
        for run_id in run_ids:
            await rt.wait(run_id)
        assert not audit.closed
    assert audit.closed
    assert sorted({e.run_id for e in audit.items}) == sorted(run_ids)
    for run_id in run_ids:
        seqs = [e.seq for e in audit.items if e.run_id == run_id]
        assert seqs == list(range((await bus.record(run_id)).events))  # type: ignore[union-attr]
        assert len(seqs) > 30


async def test_closing_the_runtime_ends_every_run_it_executes(bus: WorkBus) -> None:
    rt = rs.Runtime(graphs, bus=bus)
    async with rt:
        run_ids = [await rt.start("ticker", {"n": 5, "hang_at": 2}) for _ in range(3)]
        assert rt.executing == 3
    for run_id in run_ids:
        record = await bus.record(run_id)
        assert record is not None
        assert record.status == "canceled"


async def test_errors_name_what_is_wrong(bus: WorkBus) -> None:
    async with rs.Runtime(graphs, bus=bus) as rt:
        with pytest.raises(
            rs.UnknownGraph,
            match="unknown graph 'nope'; graphs: booker, durable_booker, steps, ticker",
        ):
            await rt.start("nope")
        with pytest.raises(TypeError, match="must be a dict of state keys"):
            await rt.start("ticker", 42)
        with pytest.raises(rs.UnknownRun, match="unknown run 'r-x'"):
            await rt.cancel("r-x")
        with pytest.raises(rs.UnknownRun):
            await rt.wait("r-x")
        with pytest.raises(rs.UnknownRun):
            await rt.subscribe("r-x", rs.MemorySink())
        assert await rt.status("r-x") is None
        with pytest.raises(rs.UnknownRun):
            [e async for e in rt.events("r-x")]
        with pytest.raises(rs.UnknownRun):
            await rt.answer("r-x", "q", 1)


def test_bad_arguments_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="role must be one of all, api, worker"):
        rs.Runtime(graphs, role="boss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        rs.Runtime(graphs, concurrency=0)
    with pytest.raises(ValueError, match="lease"):
        rs.Runtime(graphs, lease=0)
    with pytest.raises(TypeError, match="not a CompiledGraph"):
        rs.Runtime({"x": object()})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="unknown bus URL scheme 'kafka'"):
        rs.Runtime(graphs, bus="kafka://x")
    with pytest.raises(TypeError, match="bus must be"):
        rs.Runtime(graphs, bus=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "must look like scheme://"),
        ("redis//x", "must look like scheme://"),
        ("redis://", "needs a host"),
        ("nats://", "needs a host"),
        ("memory://?retention=soon", "retention must be a number"),
        ("memory://?max_events=0", "max_events must be positive"),
        ("memory://host", "takes no host"),
        ("ftp://x", "unknown bus URL scheme 'ftp'"),
    ],
)
def test_malformed_bus_urls_say_what_was_expected(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rs.open_bus(url)


async def test_open_bus_builds_each_kind(redis_url: str, nats_url: str) -> None:
    memory = rs.open_bus("memory://?max_events=10&retention=5")
    assert isinstance(memory, rs.MemoryBus)
    assert (memory.max_events, memory.retention) == (10, 5.0)
    redis_bus = rs.open_bus(redis_url + "?prefix=app1&retention=60")
    assert isinstance(redis_bus, rs.RedisBus)
    assert (redis_bus.prefix, redis_bus.retention) == ("app1", 60.0)
    nats_bus = rs.open_bus(nats_url + "?stream=APP&prefix=app")
    assert isinstance(nats_bus, rs.NatsBus)
    assert (nats_bus.stream, nats_bus.prefix) == ("APP", "app")
    for made in (memory, redis_bus, nats_bus):
        await made.connect()
        await made.aclose()


@pytest.mark.parametrize("scheme", ["redis", "nats"])
async def test_an_unreachable_broker_is_one_clear_error_naming_it(scheme: str) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        url = f"{scheme}://127.0.0.1:{s.getsockname()[1]}"
        rt = rs.Runtime(graphs, bus=url)
        with pytest.raises(ConnectionError, match=f"cannot reach .* at {url}"):
            async with rt:
                pass


async def test_a_worker_without_the_graph_ends_the_run_failed(bus: WorkBus) -> None:
    async with (
        rs.Runtime({"ticker": ticker(), "other": ticker()}, bus=bus, role="api") as api,
        rs.Runtime({"ticker": ticker()}, bus=bus, role="worker"),
    ):
        run_id = await api.start("other", {"n": 3})
        with pytest.raises(rs.RunFailed, match="UnknownGraph: this worker has no graph 'other'"):
            [e async for e in api.events(run_id)]


async def test_a_run_whose_lease_lapses_ends_with_worker_lost(bus: WorkBus) -> None:
    # A worker that stops renewing (here: its loops stopped by hand, as a killed
    # process's would) loses the run to the lease keeper of another process.
    async with rs.Runtime(graphs, bus=bus, role="api", lease=0.3) as api:
        frozen = rs.Runtime(graphs, bus=bus, role="worker", lease=0.3)
        await frozen.__aenter__()
        run_id = await api.start("ticker", {"n": 10, "hang_at": 3})
        seen = Watched()
        attachment = await api.subscribe(run_id, seen)
        await seen.reached(4)
        for task in frozen._loops:  # the worker stops renewing: as if it were killed
            task.cancel()
        with pytest.raises(rs.RunFailed, match="WorkerLost"):
            await attachment.wait()
        last: Any = seen.items[-1]
        assert (last.phase, last.error.type, last.seq) == (rs.Phase.FAILED, "WorkerLost", 4)
        frozen._running[run_id].dispose()  # the run dies with its process: no end of its own
        await frozen.aclose()
        assert (await api.wait(run_id)).status == "failed"


@pytest.mark.parametrize("kind", ["redis", "nats"])
async def test_a_run_is_invisible_to_another_principal_on_every_api_process(
    kind: str, request: pytest.FixtureRequest
) -> None:
    import httpx

    from _support.invariants import settle
    from _support.serving import serving
    from runstream.server import create_app

    url = request.getfixturevalue(f"{kind}_url")
    bus = f"{url}?prefix=auth{kind}" if kind == "redis" else f"{url}?stream=AUTH&prefix=auth"
    tokens = {"tok-ann": "ann", "tok-bob": "bob"}
    ann, bob = {"Authorization": "Bearer tok-ann"}, {"Authorization": "Bearer tok-bob"}
    api1 = create_app(rs.Runtime(graphs, bus=bus), auth=tokens)
    api2 = create_app(rs.Runtime(graphs, bus=bus, role="api"), auth=tokens)
    async with (
        serving(api1) as url1,
        serving(api2) as url2,
        httpx.AsyncClient(base_url=url1) as one,
        httpx.AsyncClient(base_url=url2) as two,
    ):
        started = await one.post("/runs", json={"graph": "ticker", "input": {"n": 3}}, headers=ann)
        run_id = started.json()["run_id"]
        for client in (one, two):
            assert (await client.get(f"/runs/{run_id}/events", headers=ann)).status_code == 200
            for path in (f"/runs/{run_id}", f"/runs/{run_id}/events"):
                assert (await client.get(path, headers=bob)).status_code == 404
            assert (await client.post(f"/runs/{run_id}/cancel", headers=bob)).status_code == 404
    await settle()  # both servers and their runtimes stopped, nothing left running


async def test_a_finished_run_leaves_no_key_on_redis_after_retention(redis_url: str) -> None:
    import redis.asyncio as redis

    bus = rs.RedisBus(redis_url, prefix="expiring", retention=1.0)
    async with rs.Runtime(graphs, bus=bus) as rt:
        run_id = await rt.start("ticker", {"n": 5})
        await rt.wait(run_id)
    client = redis.Redis.from_url(redis_url)
    try:
        assert sorted(await client.keys("expiring:*")) == [
            b"expiring:queue",
            f"expiring:record:{run_id}".encode(),
            f"expiring:run:{run_id}".encode(),
        ]

        async def expired() -> bool:  # Redis expires keys by itself, announcing nothing
            return bool(await client.keys("expiring:*") == [b"expiring:queue"])

        await eventually(expired, "the run's keys expiring after retention")
        assert await bus.record(run_id) is None
    finally:
        await client.aclose()
        await bus.aclose()


async def _nats_messages(url: str, stream: str) -> int:
    import nats

    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.messages)
    finally:
        await nc.close()


async def test_nats_ages_out_events_and_records_after_retention(nats_url: str) -> None:
    """Events older than `retention` leave the stream: a resume before them is
    `HistoryGone` (410 on the server), one after them is exact; a finished
    run's record and lease go too."""
    bus = rs.NatsBus(nats_url, stream="AGING", prefix="aging", retention=1.0)
    try:
        app = ticker()
        emitted = [e async for e in app.run({"n": 12})]
        run_id = emitted[0].run_id
        first, rest = emitted[:5], emitted[5:]
        await bus.open(run_id, graph="ticker", owner=None)
        await bus.append(run_id, first)

        async def aged() -> bool:  # JetStream drops aged messages by itself
            await bus.renew((run_id,), 30.0)  # the record stays (rewritten)
            return await _nats_messages(nats_url, "AGING") == 0

        await eventually(aged, "the first events aging out")
        await bus.append(run_id, rest)
        record = await bus.record(run_id)
        assert record is not None
        assert (record.oldest, record.events) == (5, len(emitted))
        with pytest.raises(rs.HistoryGone):
            [e async for e in bus.events(run_id)]
        assert [e async for e in bus.events(run_id, after=4)] == rest

        async def gone() -> bool:
            return await bus.record(run_id) is None

        await eventually(gone, "the finished run's record expiring after retention")
    finally:
        await bus.aclose()
