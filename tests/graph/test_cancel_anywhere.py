"""Every run invariant holds when a cancel lands at any point of a run."""

from __future__ import annotations

from typing import Any

import pytest

import runstream as rs
from _support.invariants import check_invariants, settle

pytestmark = pytest.mark.anyio


def _child() -> rs.CompiledGraph:
    async def work(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        async with ctx.tool("lookup", {"q": 1}) as call:
            await call.update(progress=0.5)
            call.result = 1
        await ctx.reply("child done")
        return {"done": True}

    g = rs.StateGraph(name="child")
    g.add_node("work", work)
    g.add_edge(rs.START, "work")
    return g.compile()


def _parent() -> rs.CompiledGraph:
    child = _child()

    async def plan(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        await ctx.think("planning")
        async with ctx.tool("search", {"q": "x"}) as call:
            call.result = {"hits": 2}
        await ctx.call_agent(child, {"task": "t"})
        async with ctx.stream_reply() as m:
            for word in ("a ", "b ", "c"):
                await m.write(word)
        return {"n": 1}

    async def side(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.tool("side", None) as call:
            await ctx.custom("tick", 1)
            call.result = "ok"

    g = rs.StateGraph(name="parent")
    g.add_node("plan", plan)
    g.add_node("side", side)
    g.add_edge(rs.START, "plan")
    g.add_edge(rs.START, "side")
    return g.compile()


class _CancelAt:
    """Records events and cancels the attachment once it has seen `at` of them."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.items: list[rs.Event] = []
        self.att: rs.Attachment[rs.Event] | None = None

    async def send(self, item: rs.Event) -> None:
        self.items.append(item)
        if len(self.items) == self.at and self.att is not None:
            self.att.cancel()

    async def close(self) -> None:
        pass


async def _full_length() -> int:
    events = [e async for e in _parent().run()]
    check_invariants(events)
    return len(events)


async def test_a_cancel_after_any_event_keeps_every_invariant() -> None:
    # buffer=1 makes every emit wait after delivery, so the cancel lands inside
    # the emit call right after the event it follows: after a ToolStart, an
    # AgentRunStarted, a text chunk, anything.
    n = await _full_length()
    for at in range(1, n + 1):
        sink = _CancelAt(at)
        att = rs.attach(_parent().run(), sink, buffer=1)
        sink.att = att
        await att.wait()
        events = sink.items
        check_invariants(events)
        last = events[-1]
        assert isinstance(last, rs.Workflow), (at, last)
        assert last.phase.is_terminal, (at, last)
    await settle()


@pytest.mark.parametrize("kind", [rs.ToolStart, rs.AgentRunStarted])
async def test_a_cancel_right_after_a_link_event_still_ends_it(kind: type[Any]) -> None:
    n = await _full_length()
    for at in range(1, n + 1):
        sink = _CancelAt(at)
        att = rs.attach(_parent().run(), sink, buffer=1)
        sink.att = att
        await att.wait()
        if len(sink.items) >= at and isinstance(sink.items[at - 1], kind):
            check_invariants(sink.items)
            break
    else:
        raise AssertionError(f"no cancel landed right after a {kind.__name__}")
