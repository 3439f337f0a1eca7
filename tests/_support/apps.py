"""Graphs for the runtime tests, importable by worker and server subprocesses.

`runstream serve tests._support.apps:graphs` / `runstream worker ...` load
them (run from the `tests` directory: `_support.apps:graphs`).
"""

from __future__ import annotations

import itertools
import operator
import os
from typing import Annotated, Any, TypedDict

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


async def book(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
    """Ask a question, then hand a tool call to the client; keep both answers."""
    when = await ctx.ask("For what time?", timeout=state.get("timeout"))
    where = await ctx.external_tools([rs.ToolCall("c1", "get_location")])
    return {"booked": [when, where]}


def booker(checkpointer: rs.Checkpointer | None = None, name: str = "booker") -> rs.CompiledGraph:
    """One node that asks, then hands a tool call to the client (`book`)."""
    g = rs.StateGraph(name=name)
    g.add_node("book", book)
    g.add_edge(rs.START, "book")
    return g.compile(checkpointer=checkpointer)


def checkpoints() -> rs.Checkpointer:
    """The bus named by `RUNSTREAM_TEST_CHECKPOINTS` (a URL) as checkpointer; else memory."""
    url = os.environ.get("RUNSTREAM_TEST_CHECKPOINTS")
    if not url:
        return rs.MemoryCheckpointer()
    bus = rs.buses.open_bus(url)
    assert isinstance(bus, rs.Checkpointer)
    return bus


class Steps(TypedDict, total=False):
    trail: Annotated[list[str], operator.add]
    final: list[str]


def _step(name: str, last: bool) -> Any:
    async def step(state: Steps, ctx: rs.RunContext) -> Steps:
        """Stream a reply and run a tool; in the process told to, hang in the middle."""
        async with ctx.stream_reply() as reply, ctx.tool("work", {"step": name}) as call:
            await reply.write(f"{name} ")
            if os.environ.get("RUNSTREAM_TEST_HANG") == name:
                await anyio.sleep_forever()  # until this process is killed
            await reply.write("done")
            call.result = name
        trail = [*state.get("trail", []), name]
        return {"trail": [name], "final": trail} if last else {"trail": [name]}

    return step


def steps(checkpointer: rs.Checkpointer | None = None) -> rs.CompiledGraph:
    """Five steps in a row, each streaming a reply inside a tool call."""
    g = rs.StateGraph(Steps, name="steps")
    names = [f"s{i}" for i in range(1, 6)]
    for i, name in enumerate(names):
        g.add_node(name, _step(name, i == len(names) - 1))
    g.add_edge(rs.START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    return g.compile(checkpointer=checkpointer)


def _durable() -> dict[str, rs.CompiledGraph]:
    store = checkpoints()
    return {"steps": steps(store), "durable_booker": booker(store, "durable_booker")}


graphs = {"ticker": ticker(), "booker": booker(), **_durable()}
