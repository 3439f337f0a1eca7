"""`Runtime.answer`: answers for the runs a Runtime executes, and their status."""

from __future__ import annotations

from typing import Any

import pytest

import runstream as rs
from _support.invariants import check_invariants, terminal

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def asking() -> rs.CompiledGraph:
    async def book(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        await ctx.phase(rs.Phase.EXECUTING_TOOLS)
        return {"booked": await ctx.ask("For what time?")}

    g = rs.StateGraph(name="booker")
    g.add_node("book", book)
    g.add_edge(rs.START, "book")
    return g.compile()


async def test_a_waiting_run_is_awaiting_until_answered() -> None:
    async with rs.Runtime({"booker": asking()}) as rt:
        run_id = await rt.start("booker")
        events: list[rs.Event] = []
        async for event in rt.events(run_id):
            events.append(event)
            if isinstance(event, rs.AwaitClarification):
                record = await rt.status(run_id)
                assert record is not None
                assert record.status == "awaiting"
                with pytest.raises(rs.UnknownRequest):
                    await rt.answer(run_id, "ask_nope", 1)
                await rt.answer(run_id, event.request_id, "19:30")
                with pytest.raises((rs.AlreadyAnswered, rs.UnknownRequest)):
                    await rt.answer(run_id, event.request_id, "20:00")
        record = await rt.wait(run_id)
        assert record.status == "completed"
        with pytest.raises(rs.UnknownRequest, match="ask_late"):
            await rt.answer(run_id, "ask_late", 1)
        with pytest.raises(rs.UnknownRun):
            await rt.answer("no-such-run", "ask_x", 1)
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)
    assert events[-2].updates == {"booked": "19:30"}  # type: ignore[union-attr]
