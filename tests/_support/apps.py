"""Graphs for the runtime tests, importable by worker and server subprocesses.

`runstream serve tests._support.apps:graphs` / `runstream worker ...` load
them (run from the `tests` directory: `_support.apps:graphs`).
"""

from __future__ import annotations

from typing import Any

import anyio

import runstream as rs


async def _tick(state: dict[str, Any], ctx: rs.RunContext) -> None:
    """Emit `n` `Custom("tick", i)` events, pausing `pause` seconds every `every`.

    With `fail_at`, raise after that many events; with `hang_at`, stop there
    and wait (until cancelled).
    """
    n, every, pause = int(state.get("n", 10)), int(state.get("every", 0)), state.get("pause", 0)
    fail_at, hang_at = state.get("fail_at"), state.get("hang_at")
    pad = "x" * int(state.get("pad", 0))
    for i in range(n):
        if i == fail_at:
            raise RuntimeError(f"failed at tick {i}")
        if i == hang_at:
            await anyio.sleep_forever()
        await ctx.custom("tick", [i, pad] if pad else i)
        if every and (i + 1) % every == 0:
            await anyio.sleep(float(pause))


def ticker() -> rs.CompiledGraph:
    g = rs.StateGraph(name="ticker")
    g.add_node("tick", _tick)
    g.add_edge(rs.START, "tick")
    return g.compile()


async def _book(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
    """Ask a question, then hand a tool call to the client; keep both answers."""
    when = await ctx.ask("For what time?", timeout=state.get("timeout"))
    where = await ctx.external_tools([rs.ToolCall("c1", "get_location")])
    return {"booked": [when, where]}


def booker() -> rs.CompiledGraph:
    g = rs.StateGraph(name="booker")
    g.add_node("book", _book)
    g.add_edge(rs.START, "book")
    return g.compile()


graphs = {"ticker": ticker(), "booker": booker()}
