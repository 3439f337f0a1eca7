"""A bus used alone, with no server: `bus.sink()` writes runs, `bus.events()` reads them back."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import runstream as rs
import runstream.buses
import runstream.server
from _support.invariants import check_invariants
from _support.server import emitter
from runstream._demo import build_demo_agent

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def test_the_bus_names_are_the_same_everywhere() -> None:
    assert runstream.server.MemoryBus is runstream.buses.MemoryBus is rs.MemoryBus
    assert runstream.server.HistoryGone is rs.HistoryGone
    assert rs.UnknownRun is runstream.buses.UnknownRun
    assert issubclass(rs.UnknownRun, KeyError)
    assert isinstance(rs.MemoryBus(), runstream.buses.RunBus)


async def recorded(app: rs.CompiledGraph, input: Any, bus: rs.MemoryBus) -> list[rs.Event]:
    """Run `app` into the bus's sink and a memory sink at once; the events the run emitted."""
    memory = rs.MemorySink[rs.Event]()
    await rs.drain(app.run(input), bus.sink(), memory)
    return list(memory.items)


async def test_a_run_written_by_the_sink_reads_back_equal_child_runs_included() -> None:
    bus = rs.MemoryBus()
    emitted = await recorded(build_demo_agent(delay=0), "Is solar cheaper?", bus)
    run_id = emitted[0].run_id
    assert any(e.run.parent_run_id is not None for e in emitted)  # a child run rode along

    read = [event async for event in bus.events(run_id)]
    assert read == emitted
    check_invariants(read)
    record = await bus.record(run_id)
    assert record is not None
    assert (record.graph, record.status, record.events) == (
        emitted[0].agent,
        "completed",
        len(emitted),
    )


async def test_events_after_a_seq_resume_exactly() -> None:
    bus = rs.MemoryBus()
    emitted = await recorded(build_demo_agent(delay=0), "hi", bus)
    run_id = emitted[0].run_id
    for after in (-1, 0, 5, len(emitted) - 2, len(emitted) - 1):
        got = [event async for event in bus.events(run_id, after=after)]
        assert got == emitted[after + 1 :], after


class Signalling:
    """Passes events on to `inner`, then sets `wrote`: the run is on the bus."""

    def __init__(self, inner: rs.Sink[rs.Event]) -> None:
        self.inner = inner
        self.wrote = anyio.Event()
        self.run_id = ""

    async def send(self, event: rs.Event) -> None:
        await self.inner.send(event)
        self.run_id = self.run_id or event.run_id
        self.wrote.set()

    async def close(self) -> None:
        await self.inner.close()


async def test_a_reader_gets_history_then_live_events() -> None:
    bus = rs.MemoryBus()
    gate = anyio.Event()  # the run waits at it after its first tick
    writer = Signalling(bus.sink())
    memory = rs.MemorySink[rs.Event]()
    att = rs.attach(emitter(5, gate=gate, gate_at=1).run({}), writer, memory)
    await writer.wrote.wait()
    run_id = writer.run_id
    read: list[rs.Event] = []
    first = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def reader() -> None:
            async for event in bus.events(run_id):
                read.append(event)
                first.set()

        tg.start_soon(reader)
        await first.wait()  # history read; the run is held at the gate, still going
        record = await bus.record(run_id)
        assert record is not None
        assert record.status == "running"
        gate.set()  # what follows reaches the reader live
    await att.wait()
    assert read == list(memory.items)
    assert [e.data for e in read if isinstance(e, rs.Custom)] == [0, 1, 2, 3, 4]


async def test_a_failed_run_reads_back_with_run_failed_after_its_last_event() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.custom("tick", 1)
        raise RuntimeError("nope")

    g = rs.StateGraph(name="failing")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    bus = rs.MemoryBus()
    memory = rs.MemorySink[rs.Event]()
    with pytest.raises(rs.RunFailed):
        await rs.drain(g.compile().run({}), bus.sink(), memory)
    run_id = memory.items[0].run_id

    read: list[rs.Event] = []

    async def read_all() -> None:
        async for event in bus.events(run_id):
            read.append(event)

    with pytest.raises(rs.RunFailed, match="nope") as info:
        await read_all()
    assert read == list(memory.items)
    assert info.value.run_id == run_id
    record = await bus.record(run_id)
    assert record is not None
    assert record.status == "failed"


async def test_one_sink_writes_many_runs() -> None:
    bus = rs.MemoryBus()
    sink = bus.sink(owner="alice")
    app = build_demo_agent(delay=0)
    firsts = [rs.MemorySink[rs.Event](), rs.MemorySink[rs.Event]()]
    for memory in firsts:
        await rs.drain(app.run("hi"), sink, memory)
    for memory in firsts:
        run_id = memory.items[0].run_id
        assert [e async for e in bus.events(run_id)] == list(memory.items)
        record = await bus.record(run_id)
        assert record is not None
        assert record.owner == "alice"


async def test_unknown_runs_and_orphan_events_are_clear_errors() -> None:
    bus = rs.MemoryBus()
    with pytest.raises(rs.UnknownRun, match="unknown run 'nope'"):
        await rs.drain(bus.events("nope"), rs.MemorySink[rs.Event]())
    child = rs.RunInfo(run_id="c", agent="h", parent_run_id="p")
    with pytest.raises(ValueError, match="parent p this sink has not seen"):
        await bus.sink().send(rs.Custom(run=child, seq=0, name="x", data=None))
