"""`MemoryBus` on its own: history then live, many readers, ends, keep-alives, retention.

And the SSE frames the server builds from its entries: once per entry, for every reader.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from types import FrameType, ModuleType
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import httpx
import pytest

import runstream as rs
import runstream.buses._memory as bus_module
from _support.invariants import settle
from runstream.buses import sse_frames
from runstream.codec import dumps
from runstream.server import Entry, HistoryGone, MemoryBus, RunBus, create_app

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
                await anyio.wait_all_tasks_blocked()  # both readers wait for the next entry
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
        await anyio.wait_all_tasks_blocked()
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


class FakeClock:
    """Stands in for the bus's monotonic clock: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(bus_module, "_clock", fake)
    return fake


async def finish(bus: MemoryBus, run_id: str) -> None:
    """Open a run and append a whole run to it: it is finished."""
    await bus.open(run_id, graph="g", owner=None)
    await bus.append(run_id, whole_run(run_id, 3))


async def kept(bus: MemoryBus, *run_ids: str) -> list[str]:
    return [r for r in run_ids if await bus.record(r) is not None]


async def test_finished_runs_are_purged_after_their_retention(clock: FakeClock) -> None:
    bus = MemoryBus(retention=10.0)
    await bus.open("long", graph="g", owner=None)  # still running: never purged
    await bus.append("long", [started(0, rs.RunInfo(run_id="long", agent="g"))])
    await finish(bus, "done")
    clock.now += 5.0
    await finish(bus, "later")
    clock.now += 5.0  # "done" is exactly `retention` old: still kept
    await bus.open("next", graph="g", owner=None)  # opening a run purges
    assert await kept(bus, "long", "done", "later", "next") == ["long", "done", "later", "next"]
    clock.now += 0.5
    await bus.open("after", graph="g", owner=None)
    assert await kept(bus, "long", "done", "later", "next") == ["long", "later", "next"]
    clock.now += 100.0
    await bus.open("last", graph="g", owner=None)
    assert await kept(bus, "long", "later", "next", "after", "last") == [
        "long",
        "next",
        "after",
        "last",
    ]


async def test_at_most_max_runs_finished_runs_are_kept_oldest_go_first() -> None:
    bus = MemoryBus(max_runs=2)
    await bus.open("running", graph="g", owner=None)
    for run_id in ("a1", "a2", "a3"):
        await finish(bus, run_id)
    await bus.open("a4", graph="g", owner=None)
    assert await kept(bus, "a1", "a2", "a3", "a4", "running") == ["a2", "a3", "a4", "running"]
    # a kept run is still readable in full
    assert seqs(await collect(bus.read("a2"))) == [0, 1, 2]


async def test_the_first_runs_to_finish_go_first_not_the_first_opened(clock: FakeClock) -> None:
    bus = MemoryBus(max_runs=2)
    for run_id in ("b1", "b2", "b3"):
        await bus.open(run_id, graph="g", owner=None)
    for run_id in ("b2", "b3", "b1"):
        clock.now += 1.0
        await bus.append(run_id, whole_run(run_id, 3))
    await bus.open("b4", graph="g", owner=None)
    assert await kept(bus, "b1", "b2", "b3") == ["b1", "b3"]
    clock.now += 1.0
    await bus.append("b4", whole_run("b4", 3))
    await bus.open("b5", graph="g", owner=None)
    assert await kept(bus, "b1", "b3", "b4", "b5") == ["b1", "b4", "b5"]


@contextlib.contextmanager
def lines_run(module: ModuleType) -> Iterator[list[int]]:
    """Count the lines of `module`'s code that run inside the block (in [0])."""
    filename = inspect.getsourcefile(module)
    count = [0]

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            count[0] += 1
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename == filename else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        yield count
    finally:
        sys.settrace(previous)


async def test_opening_a_run_looks_at_no_kept_run_but_those_it_forgets(clock: FakeClock) -> None:
    async def cost_of_open(runs: int) -> tuple[int, int]:
        """Lines the bus runs to open one run, with `runs` running and `runs` finished kept.

        Once when it forgets three runs past their retention, once when it
        forgets one run past `max_runs`.
        """
        bus = MemoryBus(max_runs=runs, retention=60.0)
        for i in range(runs):
            await bus.open(f"running-{i}", graph="g", owner=None)
        for i in range(3):
            await finish(bus, f"old-{i}")
        clock.now += 30.0
        new = [f"new-{i}" for i in range(runs)]
        for run_id in new:
            await bus.open(run_id, graph="g", owner=None)
        for run_id in new:
            await bus.append(run_id, whole_run(run_id, 3))
        clock.now += 31.0  # the old runs are past their retention, the new ones not
        with lines_run(bus_module) as past_retention:
            await bus.open("x", graph="g", owner=None)
        assert await kept(bus, "old-0", "old-2", "new-0", new[-1], "running-0") == [
            "new-0",
            new[-1],
            "running-0",
        ]
        await bus.append("x", whole_run("x", 3))  # one finished run more than max_runs
        with lines_run(bus_module) as over_max_runs:
            await bus.open("y", graph="g", owner=None)
        assert await kept(bus, "new-0", "new-1", "x", "y") == ["new-1", "x", "y"]
        return past_retention[0], over_max_runs[0]

    few, many = await cost_of_open(5), await cost_of_open(2_000)
    assert min(few) > 0
    assert many == few


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


# --- SSE frames ------------------------------------------------------------------


def test_an_entry_frames_its_event_once_for_every_reader() -> None:
    event = tick(7)
    entry = Entry(event)
    frame = entry.sse
    assert frame == b"id: 7\nevent: custom\ndata: " + dumps(event) + b"\n\n"
    assert entry.sse is frame  # built once, then shared


def test_sse_frames_joins_built_and_unbuilt_frames_alike() -> None:
    entries = [Entry(e) for e in whole_run("root", 5)]
    expected = b"".join(
        b"id: %d\nevent: %s\ndata: %s\n\n" % (e.seq, e.event.type.encode(), dumps(e.event))
        for e in entries
    )
    # some frames built, some not
    assert entries[1].sse
    assert entries[3].sse
    assert sse_frames(entries) == expected
    assert sse_frames(entries) == expected  # every one built now
    assert sse_frames([]) == b""


def events_body(body: bytes) -> bytes:
    """An SSE body without its `retry:` line (alone, or with the first event)."""
    assert body.startswith(b"retry: ")
    rest = body.split(b"\n", 1)[1]
    return rest.removeprefix(b"\n")


async def test_sse_readers_get_the_entries_frames_and_profiles_only_filter_them() -> None:
    bus = await opened(MemoryBus())
    tool_start = rs.ToolStart(
        run=ROOT, seq=1, tool_call_id="c1", tool_name="search", payload={"q": "secret"}
    )
    tool_end = rs.ToolEnd(run=ROOT, seq=3, tool_call_id="c1", tool_name="search", result=["x"])
    reply = rs.AssistantReply(run=ROOT, seq=4, text="hi", message_id="m1")
    await bus.append("root", [started(0), tool_start, tick(2), tool_end, reply, ended(5)])
    entries = await collect(bus.read("root"))
    app = create_app({}, bus=bus)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        bodies = [(await client.get("/runs/root/events")).content for _ in range(3)]
        chat = (await client.get("/runs/root/events?profile=user_chat")).content
        resumed = (await client.get("/runs/root/events?after=3")).content
    assert [events_body(b) for b in bodies] == [b"".join(e.sse for e in entries)] * 3
    assert events_body(resumed) == entries[4].sse + entries[5].sse
    # user_chat hides some events and strips the tool data of others: only those
    # are framed again; the events it keeps as they are go out as the same frames
    stripped = [
        Entry(attrs.evolve(tool_start, payload={})).sse,
        Entry(attrs.evolve(tool_end, result=None)).sse,
    ]
    assert events_body(chat) == stripped[0] + stripped[1] + entries[4].sse + entries[5].sse


async def test_readers_at_the_same_place_share_batches_framed_once() -> None:
    bus = await opened(MemoryBus())
    await bus.append("root", whole_run("root", 200))
    first, second, resumed = bus.read("root"), bus.read("root"), bus.read("root", 9)
    batch = await anext(first)
    assert await anext(second) is batch
    frames = sse_frames(batch)
    assert frames == b"".join(e.sse for e in batch)
    assert sse_frames(batch) is frames  # joined once, for every reader
    assert seqs(await anext(resumed)) == list(range(10, 74))  # elsewhere: a batch of its own
    assert await anext(second) is await anext(first)
    for reader in (first, second, resumed):
        await reader.aclose()
    # the last reader gone, nothing is kept for the next ones
    later = bus.read("root")
    again = await anext(later)
    assert again is not batch
    assert seqs(again) == seqs(batch)
    await later.aclose()
