"""Emit throughput: a node emitting N `Custom` events, consumed with `async for`.

Side by side in one process, each round in a fresh order:
- floor: a bare `asyncio.Queue(1024)` producer/consumer moving N small dicts;
- runstream: a one-node graph calling `await ctx.custom("tick", {"i": i})` N times;
- langgraph: a one-node graph calling its stream writer N times, consumed with
  `stream_mode="custom"` (needs `pip install -e ".[bench]"`).

Prints events/s (median of the rounds) and the ratios runstream/langgraph and
runstream/floor.

    python benchmarks/emit_throughput.py [--events 200000] [--rounds 5]
"""

from __future__ import annotations

import asyncio

from _common import (
    Contender,
    machine,
    medians,
    parser,
    per_second,
    print_rates,
    print_ratio,
    progress,
    ratio,
    rounds,
)

import runstream as rs

FLOOR = "floor (asyncio.Queue(1024))"
LANGGRAPH = "langgraph (stream_mode=custom)"


async def floor(n: int) -> int:
    queue: asyncio.Queue[dict[str, int] | None] = asyncio.Queue(1024)

    async def produce() -> None:
        for i in range(n):
            await queue.put({"i": i})
        await queue.put(None)

    task = asyncio.create_task(produce())
    count = 0
    while (item := await queue.get()) is not None:
        count += 1 if item else 0
    await task
    return count


def runstream_graph(n: int) -> rs.CompiledGraph:
    async def emit(state: dict[str, object], ctx: rs.RunContext) -> None:
        for i in range(n):
            await ctx.custom("tick", {"i": i})

    g = rs.StateGraph(name="bench")
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


async def runstream_run(app: rs.CompiledGraph, n: int) -> int:
    count = 0
    async for event in app.run({}):
        if type(event) is rs.Custom:
            count += 1
    return count


def langgraph_graph(n: int) -> object | None:
    try:
        from langgraph.config import get_stream_writer
        from langgraph.graph import START, StateGraph
    except ImportError:
        return None
    from typing import TypedDict

    class S(TypedDict, total=False):
        x: int

    async def emit(state: S) -> S:
        writer = get_stream_writer()
        for i in range(n):
            writer({"i": i})
        return {}

    g = StateGraph(S)
    g.add_node("emit", emit)
    g.add_edge(START, "emit")
    return g.compile()


async def langgraph_run(app: object, n: int) -> int:
    count = 0
    async for _chunk in app.astream({}, stream_mode="custom"):  # type: ignore[attr-defined]
        count += 1
    return count


async def main() -> None:
    args = parser(__doc__, events=200_000).parse_args()
    n = args.events

    rs_app = runstream_graph(n)
    lg_app = langgraph_graph(n)
    contenders: dict[str, Contender] = {
        FLOOR: lambda: floor(n),
        "runstream": lambda: runstream_run(rs_app, n),
    }
    if lg_app is not None:
        contenders[LANGGRAPH] = lambda: langgraph_run(lg_app, n)
    else:
        progress("langgraph not installed: pip install -e '.[bench]'")

    seconds = await rounds(contenders, n, args.rounds)
    rate = {name: per_second(n, s) for name, s in medians(seconds).items()}
    print(f"{machine()}\n{n:,} events, median of {args.rounds} rounds")
    print_rates(rate)
    print_ratio("runstream / floor", ratio(rate["runstream"], rate[FLOOR]), 0.3)
    if lg_app is not None:
        print_ratio("runstream / langgraph", ratio(rate["runstream"], rate[LANGGRAPH]), 3)


if __name__ == "__main__":
    asyncio.run(main())
