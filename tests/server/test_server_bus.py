"""`MemoryBus` on its own: history then live, many readers, ends, keep-alives, retention."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import anyio
import anyio.lowlevel
import pytest

import runstream as rs
from conftest import settle
from runstream.codec import dumps
from runstream.server import Entry, HistoryGone, MemoryBus, RunBus

pytestmark = pytest.mark.anyio

ROOT = rs.RunInfo(run_id="root", agent="g")
CHILD = rs.RunInfo(run_id="child", agent="h", parent_run_id="root")


def started(seq: int, run: rs.RunInfo = ROOT) -> rs.Event:
    return rs.Workflow(run=run, seq=seq, phase=rs.Phase.STARTED)


def tick(seq: int, run: rs.RunInfo = ROOT) -> rs.Event:
    return rs.Custom(run=run, seq=seq, name="tick", data=seq)


def ended(seq: int, phase: rs.Phase = rs.Phase.COMPLETED, run: rs.RunInfo = ROOT) -> rs.Event:
    return rs.Workflow(run=run, seq=seq, phase=phase)


def whole_run(run_id: str, n: int, phase: rs.Phase = rs.Phase.COMPLETED) -> list[rs.Event]:
    run = rs.RunInfo(run_id=run_id, agent="g")
    return [started(0, run), *(tick(i, run) for i in range(1, n - 1)), ended(n - 1, phase, run)]


async def collect(reader: AsyncIterator[Sequence[Entry]]) -> list[Entry]:
    return [entry async for batch in reader for entry in batch]


async def opened(bus: MemoryBus, run_id: str = "root") -> MemoryBus:
    await bus.open(run_id, graph="g", owner=None)
    return bus


def seqs(entries: Sequence[Entry]) -> list[int]:
    return [e.seq for e in entries]


def test_memory_bus_is_a_run_bus() -> None:
    assert isinstance(MemoryBus(), RunBus)


@pytest.mark.parametrize(
    "options", [{"max_events": 0}, {"retention": 0}, {"max_runs": 0}, {"retention": -1.0}]
)
def test_limits_must_be_positive(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        MemoryBus(**options)  # type: ignore[arg-type]


async def test_a_reader_gets_history_then_live_entries_and_ends_after_the_root_end() -> None:
    bus = await opened(MemoryBus())
    events = [started(0), *(tick(i) for i in range(1, 10)), ended(10)]
    await bus.append("root", events[:4])
    got: list[Entry] = []
    four = anyio.Event()
    done = anyio.Event()

    async def reader() -> None:
        async for batch in bus.read("root"):
            for entry in batch:
                got.append(entry)
                if len(got) == 4:
                    four.set()
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        with anyio.fail_after(2):
            await four.wait()  # the history
            for event in events[4:]:
                await bus.append("root", [event])  # live, one at a time
                await anyio.lowlevel.checkpoint()
            await done.wait()
    assert seqs(got) == list(range(11))
    assert [e.event for e in got] == events
    assert [e.data for e in got] == [dumps(e) for e in events]
    await settle()


async def test_after_resumes_after_that_seq_at_every_position() -> None:
    bus = await opened(MemoryBus())
    events = whole_run("root", 30)
    await bus.append("root", events)
    for after in range(-1, 30):
        assert seqs(await collect(bus.read("root", after))) == list(range(after + 1, 30))
    assert seqs(await collect(bus.read("root", 100))) == []


async def test_many_readers_get_the_same_entries() -> None:
    bus = await opened(MemoryBus())
    events = whole_run("root", 500)
    await bus.append("root", events[:50])  # some history before anyone reads
    results: list[list[int]] = [[] for _ in range(100)]

    async def reader(i: int) -> None:
        results[i] = seqs(await collect(bus.read("root")))

    async with anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(reader, i)
        for start in range(50, 500, 7):
            await bus.append("root", events[start : start + 7])
            await anyio.lowlevel.checkpoint()
    assert all(r == list(range(500)) for r in results)
    await settle()


async def test_a_cancelled_reader_does_not_disturb_the_others() -> None:
    bus = await opened(MemoryBus())
    await bus.append("root", [started(0)])
    got: list[int] = []

    async def reader() -> None:
        got.extend(seqs(await collect(bus.read("root"))))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        with anyio.CancelScope() as doomed:
            async with anyio.create_task_group() as inner:
                inner.start_soon(collect, bus.read("root"))
                await anyio.sleep(0.01)  # both readers wait for the next entry
                doomed.cancel()
        await bus.append("root", [tick(1), ended(2)])
    assert got == [0, 1, 2]
    await settle()


async def test_a_child_runs_end_does_not_end_the_read() -> None:
    bus = await opened(MemoryBus())
    await bus.append("root", [started(0), started(1, CHILD), ended(2, run=CHILD)])
    record = await bus.record("root")
    assert record is not None
    assert record.status == "running"
    got: list[int] = []
    finished = anyio.Event()

    async def reader() -> None:
        async for batch in bus.read("root"):
            got.extend(entry.seq for entry in batch)
        finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.01)
        assert got == [0, 1, 2]
        assert not finished.is_set()  # still reading: the root has not ended
        await bus.append("root", [tick(3), ended(4)])
    assert got == [0, 1, 2, 3, 4]
    record = await bus.record("root")
    assert record is not None
    assert record.status == "completed"
    await settle()


@pytest.mark.parametrize("phase", [rs.Phase.COMPLETED, rs.Phase.FAILED, rs.Phase.CANCELED])
async def test_the_record_follows_the_run(phase: rs.Phase) -> None:
    bus = MemoryBus()
    assert await bus.record("r") is None
    await bus.open("r", graph="g", owner="alice")
    events = whole_run("r", 6, phase)
    await bus.append("r", events[:3])
    record = await bus.record("r")
    assert record is not None
    assert (record.run_id, record.graph, record.owner) == ("r", "g", "alice")
    assert (record.status, record.events) == ("running", 3)
    await bus.append("r", events[3:])
    record = await bus.record("r")
    assert record is not None
    assert (record.status, record.events) == (phase.value, 6)


async def test_opening_a_run_twice_is_an_error_and_reading_an_unknown_run_a_key_error() -> None:
    bus = await opened(MemoryBus())
    with pytest.raises(ValueError, match="root"):
        await bus.open("root", graph="g", owner=None)
    with pytest.raises(KeyError):
        await anext(bus.read("nope"))


async def test_an_idle_reader_gets_a_heartbeat_none() -> None:
    bus = await opened(MemoryBus())
    await bus.append("root", [started(0)])
    reader = bus.read("root", heartbeat=0.01)
    assert seqs(await anext(reader)) == [0]
    with anyio.fail_after(2):
        assert await anext(reader) == ()  # an empty batch: the heartbeat
        assert await anext(reader) == ()
    await bus.append("root", [ended(1)])
    assert seqs(await anext(reader)) == [1]
    with pytest.raises(StopAsyncIteration):
        await anext(reader)


async def test_finished_runs_are_purged_after_their_retention() -> None:
    bus = MemoryBus(retention=0.01)
    await bus.open("long", graph="g", owner=None)  # still running: never purged
    await bus.append("long", [started(0, rs.RunInfo(run_id="long", agent="g"))])
    await bus.open("done", graph="g", owner=None)
    await bus.append("done", whole_run("done", 3))
    await anyio.sleep(0.03)
    await bus.open("next", graph="g", owner=None)  # opening a run purges
    assert await bus.record("done") is None
    assert await bus.record("long") is not None
    assert await bus.record("next") is not None


async def test_at_most_max_runs_finished_runs_are_kept_oldest_go_first() -> None:
    bus = MemoryBus(max_runs=2)
    await bus.open("running", graph="g", owner=None)
    for run_id in ("a1", "a2", "a3"):
        await bus.open(run_id, graph="g", owner=None)
        await bus.append(run_id, whole_run(run_id, 3))
        await anyio.sleep(0.001)
    await bus.open("a4", graph="g", owner=None)
    assert await bus.record("a1") is None
    for run_id in ("a2", "a3", "a4", "running"):
        assert await bus.record(run_id) is not None
    # a kept run is still readable in full
    assert seqs(await collect(bus.read("a2"))) == [0, 1, 2]


async def test_evicted_history_raises_history_gone() -> None:
    bus = await opened(MemoryBus(max_events=10))
    await bus.append("root", whole_run("root", 100))
    record = await bus.record("root")
    assert record is not None
    assert record.events == 100
    with pytest.raises(HistoryGone):
        await anext(bus.read("root"))
    with pytest.raises(HistoryGone):
        await anext(bus.read("root", 0))
    assert seqs(await collect(bus.read("root", 94))) == list(range(95, 100))


async def test_a_reader_overtaken_by_eviction_gets_history_gone_not_a_gap() -> None:
    bus = await opened(MemoryBus(max_events=10))
    events = whole_run("root", 100)
    await bus.append("root", events[:5])
    reader = bus.read("root")
    got = list(await anext(reader))
    for event in events[5:50]:
        await bus.append("root", [event])

    async def drain() -> None:
        async for batch in reader:
            got.extend(batch)

    with pytest.raises(HistoryGone):
        await drain()
    assert seqs(got) == list(range(len(got)))
