"""Durable runs on each bus: a run waiting for an answer holds no task, survives
every process of the Runtime, and goes on where it stopped on any worker."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import runstream as rs
from _support.apps import booker
from _support.invariants import check_invariants, terminal
from _support.watch import eventually
from runstream.buses import WorkBus

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def durable_booker(store: rs.Checkpointer) -> dict[str, rs.CompiledGraph]:
    return {"booker": booker(store)}


def store_of(bus: WorkBus) -> rs.Checkpointer:
    """The bus itself where it is a checkpointer (Redis, NATS); else one in memory."""
    return bus if isinstance(bus, rs.Checkpointer) else rs.MemoryCheckpointer()


async def suspended(app: rs.CompiledGraph, run_id: str) -> None:
    async def check() -> bool:
        checkpoint = await app.load_checkpoint(run_id)
        return checkpoint is not None and checkpoint.status == "suspended"

    await eventually(check, f"run {run_id} suspended")


async def start_suspended(api: rs.Runtime, app: rs.CompiledGraph) -> tuple[str, str]:
    """Start a run of `app`; return it and its question's id once it is suspended."""
    run_id = await api.start(app.name)
    async for event in api.events(run_id):
        if isinstance(event, rs.AwaitClarification):
            await suspended(app, run_id)
            return run_id, event.request_id
    raise AssertionError("the run asked nothing")


async def answering(rt: rs.Runtime, run_id: str, done: str = "") -> list[rs.Event]:
    """Read the run to its end, answering its questions (but `done`) as they come."""
    events: list[rs.Event] = []
    async for event in rt.events(run_id):
        events.append(event)
        if isinstance(event, rs.AwaitClarification) and event.request_id != done:
            await rt.answer(run_id, event.request_id, "noon")
        elif isinstance(event, rs.AwaitExternalTools):
            await rt.answer(run_id, event.request_id, ["Oslo"])
    return events


async def read_all(rt: rs.Runtime, run_id: str) -> list[rs.Event]:
    return [event async for event in rt.events(run_id)]


async def test_a_waiting_run_holds_no_task_and_goes_on_when_answered(bus: WorkBus) -> None:
    graphs = durable_booker(store_of(bus))
    app = graphs["booker"]
    async with (
        rs.Runtime(graphs, bus=bus, role="api") as api,
        rs.Runtime(graphs, bus=bus, role="worker") as worker,
    ):
        run_id = await api.start("booker")
        requests: list[Any] = []
        async for event in api.events(run_id):
            if not isinstance(event, rs.AwaitClarification | rs.AwaitExternalTools):
                continue
            requests.append(event)
            await suspended(app, run_id)
            assert worker.executing == 0  # no task holds it
            record = await api.status(run_id)
            assert record is not None
            assert record.status == "awaiting"
            with pytest.raises(rs.UnknownRequest):
                await api.answer(run_id, "ask_nope", 1)
            value = "noon" if isinstance(event, rs.AwaitClarification) else ["Oslo"]
            await api.answer(run_id, event.request_id, value)
            with pytest.raises(rs.AlreadyAnswered):
                await api.answer(run_id, event.request_id, value)
        events = await read_all(api, run_id)
        assert (await api.wait(run_id)).status == "completed"
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)
    markers = [e for e in events if isinstance(e, rs.Custom) and e.name == "runstream.resumed"]
    assert [m.data["reason"] for m in markers] == ["answered", "answered"]  # type: ignore[index]
    assert [m.data["nodes"] for m in markers] == [["book"], ["book"]]  # type: ignore[index]
    update = next(e for e in events if isinstance(e, rs.StateUpdate))
    assert update.updates == {"booked": ["noon", ["Oslo"]]}
    assert len(requests) == 2  # each asked once: the node that runs again does not ask again
    assert await app.load_checkpoint(run_id) is None  # forgotten once ended


async def test_every_process_restarts_while_a_run_is_suspended(bus: WorkBus) -> None:
    store = store_of(bus)
    graphs = durable_booker(store)
    async with (
        rs.Runtime(graphs, bus=bus, role="api") as api,
        rs.Runtime(graphs, bus=bus, role="worker"),
    ):
        run_id, request_id = await start_suspended(api, graphs["booker"])
    # Every Runtime is gone; new ones (new graph objects too) on the same bus.
    graphs = durable_booker(store)
    async with (
        rs.Runtime(graphs, bus=bus, role="api") as api,
        rs.Runtime(graphs, bus=bus, role="worker"),
    ):
        await api.answer(run_id, request_id, "noon")
        events = await answering(api, run_id, done=request_id)
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)


async def test_an_answer_that_comes_before_the_run_suspends_is_not_lost(bus: WorkBus) -> None:
    graphs = durable_booker(store_of(bus))
    async with rs.Runtime(graphs, bus=bus, role="all") as rt:
        run_id = await rt.start("booker")
        events = await answering(rt, run_id)  # each answer at once
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)


async def test_cancelling_a_suspended_run_ends_it_where_nobody_executes_it(bus: WorkBus) -> None:
    graphs = durable_booker(store_of(bus))
    async with (
        rs.Runtime(graphs, bus=bus, role="api") as api,
        rs.Runtime(graphs, bus=bus, role="worker"),
    ):
        run_id, request_id = await start_suspended(api, graphs["booker"])
        await api.cancel(run_id)
        record = await api.wait(run_id)
        assert record.status == "canceled"
        events = await read_all(api, run_id)
        with pytest.raises(rs.UnknownRequest):
            await api.answer(run_id, request_id, "noon")
    check_invariants(events)
    terminal(events, rs.Phase.CANCELED)
    assert await graphs["booker"].load_checkpoint(run_id) is None


async def test_a_worker_that_stops_hands_its_runs_over_to_the_next(bus: WorkBus) -> None:
    store = store_of(bus)
    gate = anyio.Event()
    entered = anyio.Event()

    async def slow(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        async with ctx.stream_reply() as reply, ctx.tool("work") as call:
            await reply.write("working ")
            entered.set()
            await gate.wait()  # the first worker stops while the run is here
            call.result = "done"
        return {"trail": [*state.get("trail", []), "slow"]}

    def chain() -> dict[str, rs.CompiledGraph]:
        g = rs.StateGraph(name="chain")
        g.add_node("first", lambda s: {"trail": ["first"]})
        g.add_node("slow", slow)
        g.add_edge(rs.START, "first")
        g.add_edge("first", "slow")
        return {"chain": g.compile(checkpointer=store)}

    async with rs.Runtime(chain(), bus=bus, role="api") as api:
        async with rs.Runtime(chain(), bus=bus, role="worker") as first:
            run_id = await api.start("chain")
            await entered.wait()
        assert first.executing == 0
        record = await api.status(run_id)
        assert record is not None
        assert not record.finished  # handed over, not ended
        gate.set()
        async with rs.Runtime(chain(), bus=bus, role="worker"):
            assert (await api.wait(run_id)).status == "completed"
            events = await read_all(api, run_id)
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)
    marker = next(e for e in events if isinstance(e, rs.Custom))
    assert marker.data == {  # type: ignore[comparison-overlap]
        "reason": "restarted",
        "step": 2,
        "nodes": ["slow"],
        "superseded": [marker.data["superseded"][0], marker.seq - 1],  # type: ignore[index]
    }
    cut = next(e for e in events if isinstance(e, rs.ToolEnd))
    assert cut.error is not None
    assert cut.error.type == "Canceled"  # the stopped attempt's tool call ended
    updates = [e.updates for e in events if isinstance(e, rs.StateUpdate)]
    assert updates == [{"trail": ["first"]}, {"trail": ["first", "slow"]}]
