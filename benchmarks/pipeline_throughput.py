"""Pipeline throughput: N reply chunks through a filter and a map into a sink.

Side by side in one process, each round in a fresh order:
- floor: a bare `asyncio.Queue(1024)` producer/consumer; the producer makes N
  objects with the fields of an `AssistantReply` (plain slotted class), the
  consumer keeps those of that class and appends their text to a list; the same
  with two-field objects is shown too, for context;
- runstream: a node doing `async with ctx.stream_reply() as m` and N
  `await m.write("tok ")`, piped through `ops.of_type(rs.AssistantReply)` and
  reactivex's `map` to `e.text`, attached to a `MemorySink`;
- langgraph: a node writing N chunk dicts through `get_stream_writer()`,
  consumed with `stream_mode="custom"`, filtered on the chunk's type and mapped
  to its text (needs `pip install -e ".[bench]"`).

Prints events/s (median of the rounds) and the ratios runstream/langgraph
(target >= 5x) and runstream/floor (target >= 0.5x). `--profile` also prints
where runstream's time goes (cProfile, top functions).

    python benchmarks/pipeline_throughput.py [--events 200000] [--rounds 5] [--profile]
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import time
from typing import Any

import reactivex.operators as rx
from _common import (
    Contender,
    CountingSink,
    PerClock,
    langgraph_version,
    machine,
    medians,
    parser,
    per_second,
    print_costs,
    print_rates,
    print_ratio,
    progress,
    ratio,
    reply_graph,
    rounds,
)

import runstream as rs
from runstream import ops

FLOOR = "floor, event-shaped objects"
FLOOR_TINY = "floor, 2-field objects"
RUNSTREAM = "runstream (of_type, map, attach)"
LANGGRAPH = "langgraph (stream_mode=custom)"


class Chunk:
    """What the floor moves: an object with the fields of an `AssistantReply`.

    A plain slotted class built by a plain `__init__`, stamped with
    `time.time()` like an event, so the floor pays for an object of the same
    shape but not for runstream's frozen attrs class.
    """

    __slots__ = ("done", "internal", "message_id", "node", "run", "seq", "text", "ts")

    def __init__(self, run: object, node: str, seq: int, text: str, message_id: str) -> None:
        self.run = run
        self.node = node
        self.seq = seq
        self.ts = time.time()
        self.text = text
        self.message_id = message_id
        self.done = False
        self.internal = False


class Tiny:
    """A two-field object, for the floor with minimal objects."""

    __slots__ = ("seq", "text")

    def __init__(self, seq: int, text: str) -> None:
        self.seq = seq
        self.text = text


class Other:
    """Anything else on the floor's queue (it ends the stream here)."""

    __slots__ = ()


async def floor(n: int, *, tiny: bool = False) -> int:
    queue: asyncio.Queue[Any] = asyncio.Queue(1024)
    kept: type[Chunk | Tiny] = Tiny if tiny else Chunk

    async def produce() -> None:
        if tiny:
            for i in range(n):
                await queue.put(Tiny(i, "tok "))
        else:
            run = object()
            for i in range(n):
                await queue.put(Chunk(run, "reply", i, "tok ", "msg-1"))
        await queue.put(Other())

    task = asyncio.create_task(produce())
    out: list[str] = []
    while True:
        item = await queue.get()
        if isinstance(item, kept):
            out.append(item.text)
        elif type(item) is Other:
            break
    await task
    return len(out)


def text_of(event: rs.AssistantReply) -> str:
    return event.text


async def runstream_run(app: rs.CompiledGraph) -> int:
    sink: rs.MemorySink[str] = rs.MemorySink()
    texts = app.run({}).pipe(ops.of_type(rs.AssistantReply), rx.map(text_of))
    await rs.attach(texts, sink).wait()
    # The closing chunk (done=True, empty text) is a reply too.
    return len(sink.items) - 1


def langgraph_graph(n: int) -> Any:
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
    return g.compile()


async def langgraph_run(app: Any) -> int:
    out: list[str] = []
    async for chunk in app.astream({}, stream_mode="custom"):
        if chunk.get("type") == "assistant_reply":
            out.append(chunk["text"])
    return len(out)


async def stages(app: rs.CompiledGraph, n: int, n_rounds: int) -> None:
    """runstream's cost per chunk, one stage of the pipeline added at a time."""

    async def async_for() -> int:
        count = 0
        async for event in app.run({}):
            if isinstance(event, rs.AssistantReply):
                count += 1
        return count - 1

    async def attached(*operators: Any) -> int:
        sink = CountingSink()
        await rs.attach(app.run({}).pipe(*operators), sink).wait()
        return sink.count

    of_type = ops.of_type(rs.AssistantReply)
    text = rx.map(text_of)
    variants: dict[str, Contender] = {
        "async for, isinstance": async_for,
        "attach, counting sink": lambda: attached(),
        "+ of_type": lambda: attached(of_type),
        "+ of_type + map": lambda: attached(of_type, text),
        "+ of_type + map, MemorySink": lambda: runstream_run(app),
    }
    # The counting sinks also see the Workflow and node events around the chunks.
    expected = {name: -1 for name in variants}
    for name, fn in variants.items():
        expected[name] = await fn()
    seconds = medians(await rounds(variants, expected, n_rounds, warmup=False))
    print(f"\nrunstream, one stage at a time (median of {n_rounds} rounds):")
    print_costs({name: PerClock(s.wall / n, s.cpu / n) for name, s in seconds.items()})


def profile_runstream(app: rs.CompiledGraph, top: int = 25) -> str:
    """cProfile of one runstream run: the top functions by own time."""
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(runstream_run(app))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


async def measure(n: int, n_rounds: int, breakdown: bool) -> None:
    rs_app = reply_graph(n)
    lg = langgraph_version()
    contenders: dict[str, Contender] = {
        FLOOR: lambda: floor(n),
        FLOOR_TINY: lambda: floor(n, tiny=True),
        RUNSTREAM: lambda: runstream_run(rs_app),
    }
    if lg is not None:
        lg_app = langgraph_graph(n)
        contenders[LANGGRAPH] = lambda: langgraph_run(lg_app)

    seconds = await rounds(contenders, n, n_rounds)
    rate = {name: per_second(n, s) for name, s in medians(seconds).items()}
    print(machine() + (f", langgraph {lg}" if lg else ""))
    print(f"{n:,} reply chunks, median of {n_rounds} rounds")
    print_rates(rate)
    print_ratio("runstream / floor", ratio(rate[RUNSTREAM], rate[FLOOR]), 0.5)
    print_ratio("runstream / floor, 2-field objects", ratio(rate[RUNSTREAM], rate[FLOOR_TINY]))
    if lg is not None:
        print_ratio("runstream / langgraph", ratio(rate[RUNSTREAM], rate[LANGGRAPH]), 5)
    print_costs({name: PerClock(1 / r.wall, 1 / r.cpu) for name, r in rate.items()})
    if breakdown:
        progress("timing the stages")
        await stages(rs_app, n, n_rounds)


def main() -> None:
    p = parser(__doc__, events=200_000)
    p.add_argument(
        "--profile",
        action="store_true",
        help="also time runstream stage by stage and profile one run",
    )
    args = p.parse_args()
    asyncio.run(measure(args.events, args.rounds, args.profile))
    if args.profile:
        progress("profiling one runstream run")
        print(f"\nwhere runstream's time goes ({args.events:,} chunks, cProfile, by own time):")
        print(profile_runstream(reply_graph(args.events)))


if __name__ == "__main__":
    main()
