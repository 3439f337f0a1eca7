"""Latency: emit-to-`send` delay of reply chunks paced at 10,000 events/s.

A node streams one reply, writing one chunk every 100 us on average: it checks
the schedule every 10 chunks (`time.perf_counter`) and sleeps while it is ahead.
Each chunk's text carries its index (`"t17 "`), and the node stamps the time
just before each `await m.write(...)` in a side list by index. The delivered
item's arrival is stamped at the sink. Side by side in one process, each round
in a fresh order:
- runstream: `rs.attach(app.run({}), rs.CallbackSink(fn))`;
- runstream + coalesce: the same through `ops.coalesce_text(0.02)`; a merged
  event holds several chunks, and its latency is measured from the emit of its
  LAST chunk (the one whose `seq` and `ts` it carries; the script checks that
  its `seq` is that chunk's), and also from the emit of its FIRST chunk (how long
  the earliest text waited);
- floor: the plain floor (`_common.plain_floor`: one `asyncio.Queue(1024)`
  carrying `{"i": i}`, a producer task and a consumer task) with the same
  pacing, stamped by the consumer at `get`;
- langgraph: the same pacing in a node writing through `get_stream_writer()`,
  consumed with `stream_mode="custom"` (needs `pip install -e ".[bench]"`).

Each round runs every contender once, in a fresh random order, each in a
fresh `asyncio.run` after `gc.collect()` and `gc.freeze()`; a short warm-up
round comes first. Prints p50 and p99 in ms (median of the rounds) and the
achieved event rate.

    python benchmarks/latency.py [--events 30000] [--rounds 5] [--rate 10000]
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import (
    COLUMN,
    FLOOR,
    header,
    langgraph_version,
    parser,
    percentile,
    plain_floor,
    progress,
    run_case,
)

import runstream as rs
from runstream import ops

PACE_EVERY = 10  # chunks between schedule checks


class Paced:
    """The producer's schedule and stamps: chunk i is due at `start + i / rate`."""

    def __init__(self, n: int, rate: float) -> None:
        self.n = n
        self.period = 1 / rate
        self.emitted = [0.0] * n
        self.start = 0.0
        self.end = 0.0

    async def chunks(self) -> Any:
        """Yield the chunk indexes on schedule; the caller emits each one at once."""
        period = self.period
        emitted = self.emitted
        clock = time.perf_counter
        self.start = start = clock()
        for i in range(self.n):
            if not i % PACE_EVERY:
                ahead = start + i * period - clock()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            emitted[i] = clock()
            yield i
        self.end = clock()

    @property
    def achieved(self) -> float:
        """Events per second the producer reached."""
        return self.n / (self.end - self.start)


class Latencies:
    """What a consumer measured: one or two lists of delays in seconds."""

    def __init__(self) -> None:
        self.last: list[float] = []  # from the emit of the newest chunk in the item
        self.first: list[float] = []  # from the emit of the oldest chunk in the item
        self.chunks = 0


def parse(text: str) -> tuple[int, int, int]:
    """First index, last index and chunk count of a (possibly merged) text."""
    parts = text.split()
    return int(parts[0][1:]), int(parts[-1][1:]), len(parts)


def runstream_graph(paced: Callable[[], Paced]) -> rs.CompiledGraph:
    async def reply(state: dict[str, object], ctx: rs.RunContext) -> None:
        async with ctx.stream_reply() as m:
            async for i in paced().chunks():
                await m.write(f"t{i} ")

    g = rs.StateGraph(name="bench")
    g.add_node("reply", reply)
    g.add_edge(rs.START, "reply")
    return g.compile()


async def runstream_run(n: int, rate: float, coalesce: bool) -> tuple[Paced, Latencies]:
    paced = Paced(n, rate)
    app = runstream_graph(lambda: paced)
    got = Latencies()
    seq_offset: set[int] = set()
    clock = time.perf_counter

    def on_item(event: rs.Event) -> None:
        arrived = clock()
        if type(event) is not rs.AssistantReply or not event.text:
            return
        first, last, count = parse(event.text)
        # The merged event carries the seq of its last chunk: seq - index is
        # the same for every item only if that holds. (A merged event that took
        # in the closing, empty done=True chunk carries that chunk's seq.)
        if not event.done:
            seq_offset.add(event.seq - last)
        got.last.append(arrived - paced.emitted[last])
        got.first.append(arrived - paced.emitted[first])
        got.chunks += count

    source: Any = app.run({})
    if coalesce:
        source = source.pipe(ops.coalesce_text(0.02))
    await rs.attach(source, rs.CallbackSink(on_item)).wait()
    if len(seq_offset) != 1:
        raise SystemExit(f"merged events do not carry their last chunk's seq: {seq_offset}")
    return paced, got


async def floor_run(n: int, rate: float) -> tuple[Paced, Latencies]:
    paced = Paced(n, rate)
    got = Latencies()
    clock = time.perf_counter
    emitted = paced.emitted

    def on_item(item: dict[str, int]) -> None:
        delay = clock() - emitted[item["i"]]
        got.last.append(delay)
        got.first.append(delay)
        got.chunks += 1

    await plain_floor(n, indexes=paced.chunks(), on_item=on_item)
    return paced, got


async def langgraph_run(n: int, rate: float) -> tuple[Paced, Latencies]:
    from typing import TypedDict

    from langgraph.config import get_stream_writer
    from langgraph.graph import START, StateGraph

    class S(TypedDict, total=False):
        x: int

    paced = Paced(n, rate)

    async def reply(state: S) -> S:
        writer = get_stream_writer()
        async for i in paced.chunks():
            writer({"type": "assistant_reply", "text": f"t{i} "})
        return {}

    g = StateGraph(S)
    g.add_node("reply", reply)
    g.add_edge(START, "reply")
    app: Any = g.compile()
    got = Latencies()
    clock = time.perf_counter
    async for chunk in app.astream({}, stream_mode="custom"):
        arrived = clock()
        if chunk.get("type") == "assistant_reply":
            first, last, count = parse(chunk["text"])
            got.last.append(arrived - paced.emitted[last])
            got.first.append(arrived - paced.emitted[first])
            got.chunks += count
    return paced, got


Contender = Callable[[], Awaitable[tuple[Paced, Latencies]]]


def measure(n: int, n_rounds: int, rate: float, seed: int) -> None:
    lg = langgraph_version()
    header(
        "langgraph",
        method="method: wall-clock delays (time.perf_counter), interleaved rounds in a fresh"
        " random order, each case in a fresh asyncio.run, gc collected and frozen before each",
    )

    def contenders(n: int) -> dict[str, Contender]:
        c: dict[str, Contender] = {
            FLOOR: lambda: floor_run(n, rate),
            "runstream": lambda: runstream_run(n, rate, False),
            "runstream + coalesce_text(0.02)": lambda: runstream_run(n, rate, True),
        }
        if lg is not None:
            c["langgraph (stream_mode=custom)"] = lambda: langgraph_run(n, rate)
        return c

    for fn in contenders(max(1000, n // 10)).values():  # a short warm-up
        run_case(fn)
    progress("warm-up done")
    order_of = random.Random(seed)
    results: dict[str, dict[str, list[float]]] = {name: {} for name in contenders(n)}
    for r in range(n_rounds):
        c = contenders(n)
        order = list(c)
        order_of.shuffle(order)
        for name in order:
            _, (paced, got) = run_case(c[name])
            if got.chunks != n:
                raise SystemExit(f"{name}: {got.chunks} chunks arrived, expected {n}")
            row = results[name]
            for key, value in (
                ("p50 last", percentile(got.last, 50)),
                ("p99 last", percentile(got.last, 99)),
                ("p50 first", percentile(got.first, 50)),
                ("p99 first", percentile(got.first, 99)),
                ("items", len(got.last)),
                ("rate", paced.achieved),
            ):
                row.setdefault(key, []).append(value)
        progress(f"round {r + 1}/{n_rounds} done")

    med = {name: {k: statistics.median(v) for k, v in row.items()} for name, row in results.items()}
    print(
        f"{n:,} chunks paced at {rate:,.0f}/s (checked every {PACE_EVERY}),"
        f" median of {n_rounds} rounds; latency in ms"
    )
    print(
        f"  {'':{COLUMN}s} {'from last chunk':>17s} {'from first chunk':>17s}"
        f" {'items':>9s} {'achieved':>9s}"
    )
    print(
        f"  {'ms':{COLUMN}s} {'p50':>8s} {'p99':>8s} {'p50':>8s} {'p99':>8s}"
        f" {'delivered':>9s} {'chunks/s':>9s}"
    )
    for name, m in med.items():
        print(
            f"  {name:{COLUMN}s} {m['p50 last'] * 1e3:8.3f} {m['p99 last'] * 1e3:8.3f}"
            f" {m['p50 first'] * 1e3:8.3f} {m['p99 first'] * 1e3:8.3f}"
            f" {m['items']:9,.0f} {m['rate']:9,.0f}"
        )
    floor = med[FLOOR]
    ours = med["runstream"]
    p50, p99 = ours["p50 last"] / floor["p50 last"], ours["p99 last"] / floor["p99 last"]
    print(f"  {'runstream / floor (p50, p99)':{COLUMN}s} {p50:7.2f}x {p99:7.2f}x")
    if lg is not None:
        peer = med["langgraph (stream_mode=custom)"]
        p50, p99 = ours["p50 last"] / peer["p50 last"], ours["p99 last"] / peer["p99 last"]
        print(f"  {'runstream / langgraph (p50, p99)':{COLUMN}s} {p50:7.2f}x {p99:7.2f}x")


def main() -> None:
    p = parser(__doc__, events=30_000)
    p.add_argument("--rate", type=float, default=10_000, help="chunks per second")
    args = p.parse_args()
    measure(args.events, args.rounds, args.rate, args.seed)


if __name__ == "__main__":
    main()
