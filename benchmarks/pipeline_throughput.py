"""Pipeline throughput: the pipeline users write, against the plain floor and LangGraph.

Side by side in one process (see `_common.py` for the method: CPU time,
medians of interleaved rounds, a fresh `asyncio.run` per case):
- floor: the plain floor, one `asyncio.Queue(1024)` carrying `{"i": i}`, one
  `await put` / `await get` per item, a producer task and a consumer task;
- runstream pipeline: a node doing `await ctx.custom("i", i)` N times, the run
  piped through `ops.of_type(rs.Custom)` and reactivex's `map(lambda e: e.data)`
  into `rs.drain(stream, sink)`, the sink having only `async send` (it counts)
  and `async close` (no `send_batch`);
- runstream async for: the same run read by `async for event in app.run({})`,
  no operators, `isinstance(event, rs.Custom)` in the loop body;
- langgraph: a node calling its stream writer N times (`writer({"i": i})`),
  read by `async for chunk in app.astream({}, stream_mode="custom")`.

Prints items/s (median of the rounds) and the ratios to the floor and to
LangGraph, with the targets: pipeline >= 0.75x the floor and >= 6x LangGraph,
async for >= 0.7x the floor. `--profile` also times the pipeline stage by
stage and prints where its time goes (cProfile).

    python benchmarks/pipeline_throughput.py [--events 50000] [--rounds 21] [--profile]
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
from typing import Any

import reactivex.operators as rx
from _common import (
    FLOOR,
    Contender,
    CountingSink,
    SendOnlySink,
    custom_graph,
    header,
    langgraph_custom_graph,
    langgraph_version,
    medians,
    parser,
    per_item,
    per_second,
    plain_floor,
    print_costs,
    print_rates,
    print_ratio,
    print_ratio_header,
    progress,
    rate_spread,
    ratio,
    run_rounds,
)

import runstream as rs
from runstream import ops

PIPELINE = "runstream: of_type, map, drain(send-only)"
ASYNC_FOR = "runstream: async for (no operators)"
LANGGRAPH = "langgraph: astream(stream_mode=custom)"


async def pipeline_run(app: rs.CompiledGraph) -> int:
    sink = SendOnlySink()
    stream = app.run({}).pipe(ops.of_type(rs.Custom), rx.map(lambda e: e.data))
    await rs.drain(stream, sink)
    if not sink.closed:
        raise SystemExit("pipeline: the sink was not closed")
    return sink.count


async def async_for_run(app: rs.CompiledGraph) -> int:
    count = 0
    async for event in app.run({}):
        if isinstance(event, rs.Custom):
            count += 1
    return count


async def langgraph_run(app: Any) -> int:
    count = 0
    async for _chunk in app.astream({}, stream_mode="custom"):
        count += 1
    return count


def stages(app: rs.CompiledGraph, n: int, n_rounds: int, seed: int) -> None:
    """The pipeline's cost per event, one stage added at a time."""

    async def drained(*operators: Any, sink: Any = None) -> int:
        sink = sink if sink is not None else SendOnlySink()
        await rs.drain(app.run({}).pipe(*operators), sink)
        return int(sink.count)

    of_type = ops.of_type(rs.Custom)
    data = rx.map(lambda e: e.data)
    variants: dict[str, Contender] = {
        "async for, isinstance": lambda: async_for_run(app),
        "drain(send-only), no operators": lambda: drained(),
        "+ of_type": lambda: drained(of_type),
        "+ of_type + map (the pipeline)": lambda: drained(of_type, data),
        "the pipeline, sink with send_batch": lambda: drained(of_type, data, sink=CountingSink()),
    }
    # Without of_type the sink also counts the Workflow and StateUpdate events.
    expected = {name: asyncio.run(fn()) for name, fn in variants.items()}
    seconds = medians(run_rounds(variants, expected, n_rounds, seed=seed, warmup=False))
    print(f"\nrunstream, one stage at a time (median of {n_rounds} rounds):")
    print_costs({name: per_item(n, s) for name, s in seconds.items()})


def profile_pipeline(app: rs.CompiledGraph, top: int = 30) -> str:
    """cProfile of one pipeline run: the top functions by own time."""
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(pipeline_run(app))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    p = parser(__doc__, events=50_000, rounds=21)
    p.add_argument(
        "--profile",
        action="store_true",
        help="also time the pipeline stage by stage and profile one run",
    )
    args = p.parse_args()
    n = args.events
    app = custom_graph(n)
    lg = langgraph_version()
    header("langgraph")
    contenders: dict[str, Contender] = {
        FLOOR: lambda: plain_floor(n),
        PIPELINE: lambda: pipeline_run(app),
        ASYNC_FOR: lambda: async_for_run(app),
    }
    if lg is not None:
        lg_app = langgraph_custom_graph(n)
        contenders[LANGGRAPH] = lambda: langgraph_run(lg_app)

    seconds = run_rounds(contenders, n, args.rounds, seed=args.seed)
    rate = {name: per_second(n, s) for name, s in medians(seconds).items()}
    print(f"{n:,} events per case, median of {args.rounds} rounds")
    print_rates(rate)

    def show(num: str, den: str, label: str, target: float | None = None) -> None:
        spread = rate_spread(seconds, num, den)
        print_ratio(label, ratio(rate[num], rate[den]), target, spread=spread)

    print_ratio_header()
    show(PIPELINE, FLOOR, "pipeline / floor", 0.75)
    show(ASYNC_FOR, FLOOR, "async for / floor", 0.7)
    if lg is not None:
        show(PIPELINE, LANGGRAPH, "pipeline / langgraph", 6)
        show(ASYNC_FOR, LANGGRAPH, "async for / langgraph")
    print_costs({name: per_item(n, s) for name, s in medians(seconds).items()})
    if args.profile:
        progress("timing the stages")
        stages(app, n, args.rounds, args.seed)
        progress("profiling one pipeline run")
        print(f"\nwhere the pipeline's time goes ({n:,} events, cProfile, by own time):")
        print(profile_pipeline(custom_graph(n)))


if __name__ == "__main__":
    main()
