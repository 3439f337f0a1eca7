"""Memory: many concurrent runs, and one long run into a slow sink with `block`.

Measured with `tracemalloc` (Python allocations only), side by side in one process:

(a) concurrent runs: R runs started at once, each streaming K reply chunks with
    an `await asyncio.sleep(0)` between chunks so that all of them are alive at
    the same time, each attached to its own sink that only counts. Reported:
    peak traced memory above the baseline, divided by R (bytes per concurrent
    run), median of the rounds; next to the floor (R copies of the plain floor
    of `_common.plain_floor`: a producer task and a consumer task around their
    own `asyncio.Queue(1024)` carrying `{"i": i}`, with the same `sleep(0)`)
    and LangGraph (R concurrent `astream(stream_mode="custom")` consumers of a
    node writing K chunks).
(b) one run of N chunks attached with `overflow="block"` (buffer 1024) to a
    slow sink that counts and does `await asyncio.sleep(0)` per `send`: traced
    memory sampled every N/10 items at the sink, printed with max - min (it must
    stay flat), next to LangGraph's custom stream read by the same slow consumer
    (its stream has no demand signal: `--peer-events` of them, default N/10).

    python benchmarks/memory.py [--runs 1000] [--per-run 100] [--rounds 3]
                                [--events 500000] [--peer-events N/10] [--part a|b|both]
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from _common import (
    COLUMN,
    CountingSink,
    header,
    langgraph_version,
    parser,
    plain_floor,
    progress,
    reply_graph,
)

import runstream as rs


class Alive:
    """Counts the producers alive at once, to show the runs overlap."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def enter(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def leave(self) -> None:
        self.now -= 1


FLOOR_PAIRS = "floor: Queue(1024) pairs, {'i': i}"


# (a) concurrent runs ---------------------------------------------------------


def yielding_graph(k: int, alive: Alive) -> rs.CompiledGraph:
    async def reply(state: dict[str, object], ctx: rs.RunContext) -> None:
        alive.enter()
        try:
            async with ctx.stream_reply() as m:
                for _ in range(k):
                    await m.write("tok ")
                    await asyncio.sleep(0)
        finally:
            alive.leave()

    g = rs.StateGraph(name="bench")
    g.add_node("reply", reply)
    g.add_edge(rs.START, "reply")
    return g.compile()


async def runstream_runs(r: int, k: int, alive: Alive) -> Callable[[], Awaitable[int]]:
    app = yielding_graph(k, alive)

    async def go() -> int:
        sinks = [CountingSink() for _ in range(r)]
        attachments = [rs.attach(app.run({}), sink) for sink in sinks]
        for att in attachments:
            await att.wait()
        # k chunks, the closing chunk, a state update and two Workflow events.
        return sum(s.count for s in sinks) // (k + 4)

    return go


async def floor_runs(r: int, k: int, alive: Alive) -> Callable[[], Awaitable[int]]:
    async def yielding() -> AsyncIterator[int]:
        alive.enter()
        try:
            for i in range(k):
                yield i
                await asyncio.sleep(0)
        finally:
            alive.leave()

    async def go() -> int:
        counts = await asyncio.gather(*(plain_floor(k, indexes=yielding()) for _ in range(r)))
        return sum(counts) // k

    return go


async def langgraph_runs(r: int, k: int, alive: Alive) -> Callable[[], Awaitable[int]]:
    from typing import TypedDict

    from langgraph.config import get_stream_writer
    from langgraph.graph import START, StateGraph

    class S(TypedDict, total=False):
        x: int

    async def reply(state: S) -> S:
        alive.enter()
        try:
            writer = get_stream_writer()
            for _ in range(k):
                writer({"type": "assistant_reply", "text": "tok "})
                await asyncio.sleep(0)
        finally:
            alive.leave()
        return {}

    g = StateGraph(S)
    g.add_node("reply", reply)
    g.add_edge(START, "reply")
    app: Any = g.compile()

    async def one() -> int:
        count = 0
        async for _chunk in app.astream({}, stream_mode="custom"):
            count += 1
        return count

    async def go() -> int:
        counts = await asyncio.gather(*(one() for _ in range(r)))
        return sum(counts) // k

    return go


async def peak_per_run(go: Callable[[], Awaitable[int]], r: int) -> float:
    """Peak traced bytes above the baseline while `go()` runs, per run."""
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    got = await go()
    peak = tracemalloc.get_traced_memory()[1]
    if got != r:
        raise SystemExit(f"expected {r} runs to finish, counted {got}")
    return (peak - base) / r


async def concurrent(r: int, k: int, n_rounds: int, lg: str | None) -> None:
    import random

    makers = {
        FLOOR_PAIRS: floor_runs,
        "runstream (attach, counting sink)": runstream_runs,
    }
    if lg is not None:
        makers["langgraph (stream_mode=custom)"] = langgraph_runs
    alive = {name: Alive() for name in makers}
    small = {name: await make(min(r, 20), k, Alive()) for name, make in makers.items()}
    full = {name: await make(r, k, alive[name]) for name, make in makers.items()}
    for go in small.values():  # warm-up: imports, caches, code objects
        await peak_per_run(go, min(r, 20))
    progress("(a) warm-up done")
    per_run: dict[str, list[float]] = {name: [] for name in makers}
    for i in range(n_rounds):
        order = list(makers)
        random.shuffle(order)
        for name in order:
            per_run[name].append(await peak_per_run(full[name], r))
        progress(f"(a) round {i + 1}/{n_rounds} done")

    med = {name: statistics.median(v) for name, v in per_run.items()}
    print(
        f"\n(a) {r:,} concurrent runs of {k} chunks each, peak traced memory per run,"
        f" median of {n_rounds} rounds"
    )
    print(f"  {'':{COLUMN}s} {'KiB/run':>9s} {'most alive':>11s}")
    for name, v in med.items():
        print(f"  {name:{COLUMN}s} {v / 1024:9.1f} {alive[name].most:11,}")
    ours = med["runstream (attach, counting sink)"]
    print(f"  {'runstream / floor':{COLUMN}s} {ours / med[FLOOR_PAIRS]:8.2f}x")
    if lg is not None:
        peer = med["langgraph (stream_mode=custom)"]
        print(f"  {'runstream / langgraph':{COLUMN}s} {ours / peer:8.2f}x")


# (b) one long run into a slow sink ---------------------------------------------


class SlowSink:
    """Counts, yields to the loop on every send, samples traced memory now and then."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.count = 0
        self.samples: list[int] = []

    async def send(self, item: object) -> None:
        self.count += 1
        if not self.count % self.every:
            self.samples.append(tracemalloc.get_traced_memory()[0])
        await asyncio.sleep(0)

    async def close(self) -> None:
        pass


async def slow_runstream(n: int) -> tuple[SlowSink, rs.SinkStats, float]:
    app = reply_graph(n)
    sink = SlowSink(max(1, n // 10))
    start = time.perf_counter()
    (stats,) = await rs.attach(app.run({}), sink, buffer=1024, overflow="block").wait()
    return sink, stats, time.perf_counter() - start


async def slow_langgraph(n: int) -> tuple[SlowSink, float]:
    from typing import TypedDict

    from langgraph.config import get_stream_writer
    from langgraph.graph import START, StateGraph

    class S(TypedDict, total=False):
        x: int

    async def reply(state: S) -> S:
        writer = get_stream_writer()
        for _ in range(n):
            writer({"type": "assistant_reply", "text": "tok "})
        return {}

    g = StateGraph(S)
    g.add_node("reply", reply)
    g.add_edge(START, "reply")
    app: Any = g.compile()
    sink = SlowSink(max(1, n // 10))
    start = time.perf_counter()
    async for chunk in app.astream({}, stream_mode="custom"):
        await sink.send(chunk)
    return sink, time.perf_counter() - start


def baseline() -> int:
    """Traced bytes now, after a collection; the peak starts again from here."""
    gc.collect()
    tracemalloc.reset_peak()
    return tracemalloc.get_traced_memory()[0]


def show_samples(name: str, sink: SlowSink, base: int, seconds: float) -> None:
    mib = [(s - base) / 2**20 for s in sink.samples]
    spread = max(mib) - min(mib)
    peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20
    print(f"  {name}: {sink.count:,} items in {seconds:.1f} s")
    print(f"    traced MiB above baseline every {sink.every:,} items:")
    print("    " + " ".join(f"{m:.2f}" for m in mib))
    print(f"    max - min of the samples = {spread:.3f} MiB; peak = {peak:.2f} MiB")


async def slow_sink(n: int, peer_n: int, lg: str | None) -> None:
    # A short warm-up first, so lazy imports and caches are not counted.
    await slow_runstream(2000)
    if lg is not None:
        await slow_langgraph(2000)
    base = baseline()
    progress(f"(b) runstream, {n:,} events into a slow sink")
    sink, stats, seconds = await slow_runstream(n)
    print("\n(b) one run into a slow sink (sleep(0) per send), overflow='block', buffer=1024")
    show_samples("runstream", sink, base, seconds)
    print(
        f"    sink stats: delivered {stats.delivered:,}, dropped {stats.dropped},"
        f" max_queued {stats.max_queued:,}"
    )
    if lg is not None:
        base = baseline()
        progress(f"(b) langgraph, {peer_n:,} events into the same slow consumer")
        peer, seconds = await slow_langgraph(peer_n)
        show_samples("langgraph (stream_mode=custom, no demand signal)", peer, base, seconds)


def main() -> None:
    p = parser(__doc__, events=500_000, rounds=3)
    p.add_argument("--runs", type=int, default=1000, help="(a) concurrent runs, default 1000")
    p.add_argument("--per-run", type=int, default=100, help="(a) chunks per run, default 100")
    p.add_argument("--peer-events", type=int, default=None, help="(b) LangGraph's events")
    p.add_argument("--part", choices=["a", "b", "both"], default="both")
    args = p.parse_args()
    lg = langgraph_version()
    header(
        "langgraph",
        method="method: tracemalloc (Python allocations), one asyncio loop for every contender,"
        " gc.collect() before each measurement",
    )
    tracemalloc.start()

    async def run() -> None:
        if args.part in ("a", "both"):
            await concurrent(args.runs, args.per_run, args.rounds, lg)
        if args.part in ("b", "both"):
            peer_n = args.peer_events or max(10, args.events // 10)
            await slow_sink(args.events, peer_n, lg)

    asyncio.run(run())


if __name__ == "__main__":
    main()
