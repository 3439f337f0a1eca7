"""What every bus does, run against MemoryBus, a real Redis and a real NATS JetStream."""

from __future__ import annotations

import anyio
import pytest

import runstream as rs
from _support.apps import ticker
from _support.invariants import check_invariants
from _support.server import emitter
from _support.watch import Watched, on_bus
from runstream._demo import build_demo_agent
from runstream.buses import Job, WorkBus

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def written(bus: WorkBus, app: rs.CompiledGraph, input: object = None) -> list[rs.Event]:
    memory = rs.MemorySink[rs.Event]()
    await rs.drain(app.run(input), bus.sink(), memory)
    return list(memory.items)


async def test_a_run_reads_back_equal_and_resumes_exactly_after_every_seq(bus: WorkBus) -> None:
    emitted = await written(bus, build_demo_agent(delay=0), "Is solar cheaper?")
    run_id = emitted[0].run_id
    assert any(e.run.parent_run_id is not None for e in emitted)
    assert [e async for e in bus.events(run_id)] == emitted
    check_invariants(emitted)
    for after in range(-1, len(emitted)):
        assert [e async for e in bus.events(run_id, after=after)] == emitted[after + 1 :], after
    record = await bus.record(run_id)
    assert record is not None
    assert (record.graph, record.status, record.events, record.finished) == (
        emitted[0].agent,
        "completed",
        len(emitted),
        True,
    )


async def test_runs_written_together_resume_exactly_after_every_seq(bus: WorkBus) -> None:
    """Runs whose entries interleave on the broker: each resumes at its own place."""
    app = ticker()
    runs: list[list[rs.Event]] = []

    async def one() -> None:
        runs.append(await written(bus, app, {"n": 60, "every": 7}))

    async with anyio.create_task_group() as tasks:
        for _ in range(3):
            tasks.start_soon(one)
    for emitted in runs:
        run_id = emitted[0].run_id
        for after in range(-1, len(emitted)):
            tail = [e async for e in bus.events(run_id, after=after)]
            assert tail == emitted[after + 1 :], (run_id, after)


async def test_a_reader_follows_a_live_run_to_its_end(bus: WorkBus) -> None:
    gate = anyio.Event()
    app = emitter(300, gate=gate, gate_at=150)
    memory = Watched()
    attachment = rs.attach(app.run(), bus.sink(), memory)
    run_id = (await memory.reached(1))[0].run_id
    await on_bus(bus, run_id)
    got = Watched()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(rs.drain, bus.events(run_id), got)
        await got.reached(100)  # read live, while the run waits at its gate
        gate.set()
    await attachment.wait()
    got = got.items
    assert got == memory.items
    assert [e.seq for e in got] == list(range(len(got)))


async def test_heartbeats_come_as_empty_batches_while_a_run_is_idle(bus: WorkBus) -> None:
    gate = anyio.Event()
    memory = Watched()
    attachment = rs.attach(emitter(3, gate=gate, gate_at=1).run(), bus.sink(), memory)
    run_id = (await memory.reached(2))[0].run_id
    await on_bus(bus, run_id, 2)
    batches = []
    async for batch in bus.read(run_id, heartbeat=0.2):
        batches.append(len(batch))
        if len(batches) > 1 and batches[-1] == 0:
            gate.set()
    await attachment.wait()
    assert 0 in batches
    assert sum(batches) == len(memory.items)


async def test_unknown_runs_are_unknown_everywhere(bus: WorkBus) -> None:
    assert await bus.record("nope") is None
    with pytest.raises(rs.UnknownRun, match="unknown run 'nope'"):
        async for _ in bus.read("nope"):
            pass
    with pytest.raises(rs.UnknownRun):
        await bus.request_cancel("nope")
    with pytest.raises(rs.UnknownRun):
        await bus.set_status("nope", "running")


async def test_a_run_id_opened_twice_is_refused(bus: WorkBus) -> None:
    await bus.open("r1", graph="g", owner=None)
    with pytest.raises(ValueError, match="already exists"):
        await bus.open("r1", graph="g", owner=None)


async def test_records_carry_owner_thread_and_status(bus: WorkBus) -> None:
    await bus.open("r2", graph="g", owner="ann", thread_id="t9", status="queued")
    record = await bus.record("r2")
    assert record == rs.RunRecord("r2", "g", "ann", "t9", "queued", 0)
    await bus.set_status("r2", "running")
    assert (await bus.record("r2")).status == "running"  # type: ignore[union-attr]


async def test_queued_runs_go_to_one_claimer_each(bus: WorkBus) -> None:
    jobs = [Job(f"j{i}", "g", {"i": i}, None, "ann") for i in range(5)]
    for job in jobs:
        await bus.open(job.run_id, graph="g", owner="ann", status="queued")
        await bus.enqueue(job)
    claimed = []
    for _ in range(5):
        job = await bus.claim(5.0, 30.0)
        assert job is not None
        claimed.append(job)
    assert sorted(claimed, key=lambda j: j.run_id) == jobs
    assert await bus.claim(0.2, 30.0) is None


async def test_cancel_requests_reach_listeners_and_stay_on_the_record(bus: WorkBus) -> None:
    await bus.open("c1", graph="g", owner=None)
    heard: list[str] = []
    listening = anyio.Event()

    async def listen() -> None:
        requests = bus.cancel_requests()
        first = requests.__anext__()
        listening.set()
        heard.append(await first)
        await requests.aclose()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(listen)
        await listening.wait()
        assert not await bus.cancel_requested("c1")
        with anyio.fail_after(10):
            while not heard:
                await bus.request_cancel("c1")  # a subscription may take a moment to be live
                await anyio.sleep(0.05)
    assert heard == ["c1"]
    assert await bus.cancel_requested("c1")


async def test_an_expired_lease_is_taken_once(bus: WorkBus) -> None:
    await bus.renew(["l1", "l2"], 0.05)
    await bus.renew(["l3"], 60.0)
    await anyio.sleep(0.2)
    first, second = await bus.take_expired(), await bus.take_expired()
    assert sorted(first) == ["l1", "l2"]
    assert second == []
    await bus.release("l3")
    assert await bus.take_expired() == []
