"""Answers across processes: an API process answers a run waiting on a worker,
through each bus (the broker carries the answer)."""

from __future__ import annotations

import pytest

import runstream as rs
from _support.apps import booker
from _support.invariants import check_invariants, terminal
from runstream.buses import WorkBus

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


graphs = {"booker": booker()}


async def test_an_api_process_answers_a_run_waiting_on_a_worker(bus: WorkBus) -> None:
    async with (
        rs.Runtime(graphs, bus=bus, role="api") as api,
        rs.Runtime(graphs, bus=bus, role="worker"),
    ):
        run_id = await api.start("booker")
        events: list[rs.Event] = []
        async for event in api.events(run_id):
            events.append(event)
            if isinstance(event, rs.AwaitClarification):
                with pytest.raises(rs.UnknownRequest, match="ask_nope"):
                    await api.answer(run_id, "ask_nope", "noon")
                await api.answer(run_id, event.request_id, "noon")
                with pytest.raises((rs.AlreadyAnswered, rs.UnknownRequest)):
                    await api.answer(run_id, event.request_id, "one")
            elif isinstance(event, rs.AwaitExternalTools):
                with pytest.raises(ValueError, match="one per tool call"):
                    await api.answer(run_id, event.request_id, "Oslo")
                await api.answer(run_id, event.request_id, ["Oslo"])
        record = await api.wait(run_id)
        assert record.status == "completed"
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)
    update = next(e for e in events if isinstance(e, rs.StateUpdate))
    assert update.updates == {"booked": ["noon", ["Oslo"]]}


async def test_an_answer_is_kept_once_on_the_bus(bus: WorkBus) -> None:
    await bus.open("r-1", graph="booker", owner=None)
    assert await bus.posted_answer("r-1", "ask_1") == (False, None)
    assert await bus.post_answer("r-1", "ask_1", {"at": "noon"})
    assert not await bus.post_answer("r-1", "ask_1", {"at": "one"})
    assert await bus.posted_answer("r-1", "ask_1") == (True, {"at": "noon"})
    with pytest.raises(rs.UnknownRun):
        await bus.post_answer("r-nope", "ask_1", 1)


async def test_no_answer_in_time_ends_the_run_on_the_worker_canceled(bus: WorkBus) -> None:
    async with (
        rs.Runtime(graphs, bus=bus, role="api") as api,
        rs.Runtime(graphs, bus=bus, role="worker"),
    ):
        run_id = await api.start("booker", {"timeout": 0.2})
        record = await api.wait(run_id)
        events = [e async for e in api.events(run_id)]
    assert record.status == "canceled"
    ended = terminal(events, rs.Phase.CANCELED)
    assert ended.error is not None
    assert ended.error.type == "TimeoutError"
