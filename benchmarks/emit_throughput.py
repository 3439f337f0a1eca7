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

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import runstream as rs


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


async def timed(fn: Callable[[], Awaitable[int]], n: int) -> float:
    start = time.perf_counter()
    got = await fn()
    elapsed = time.perf_counter() - start
    if got != n:
        raise SystemExit(f"expected {n} events, got {got}")
    return n / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.events

    rs_app = runstream_graph(n)
    lg_app = langgraph_graph(n)
    contenders: dict[str, Callable[[], Awaitable[int]]] = {
        "floor (asyncio.Queue(1024))": lambda: floor(n),
        "runstream": lambda: runstream_run(rs_app, n),
    }
    if lg_app is not None:
        contenders["langgraph (stream_mode=custom)"] = lambda: langgraph_run(lg_app, n)
    else:
        print("langgraph not installed: pip install -e '.[bench]'", file=sys.stderr)

    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm-up
        await timed(fn, n)
    for r in range(args.rounds):
        order = list(contenders)
        random.shuffle(order)
        for name in order:
            rates[name].append(await timed(contenders[name], n))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    median = {name: statistics.median(v) for name, v in rates.items()}
    print(f"python {sys.version.split()[0]}, {n:,} events, median of {args.rounds} rounds")
    for name, rate in median.items():
        print(f"  {name:34s} {rate / 1e6:7.3f} M events/s")
    ours = median["runstream"]
    print(f"  runstream / floor      = {ours / median['floor (asyncio.Queue(1024))']:.2f}x")
    if lg_app is not None:
        print(f"  runstream / langgraph  = {ours / median['langgraph (stream_mode=custom)']:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
