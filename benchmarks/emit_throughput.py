"""Emit throughput: a node emitting N `Custom` events with a dict payload, read by `async for`.

Side by side in one process (see `_common.py` for the method: CPU time,
medians of interleaved rounds, a fresh `asyncio.run` per case):
- floor: the plain floor, one `asyncio.Queue(1024)` carrying `{"i": i}`, one
  `await put` / `await get` per item, a producer task and a consumer task;
- runstream: a one-node graph calling `await ctx.custom("tick", {"i": i})` N
  times (a dict payload: the general JSON check, not the scalar fast path of
  `pipeline_throughput.py`), read by `async for`;
- langgraph: a one-node graph calling its stream writer N times with the same
  dicts, read by `async for` over `astream(stream_mode="custom")` (needs
  `pip install -e ".[bench]"`).

Prints events/s (median of the rounds) and the ratios runstream/langgraph
(target >= 3x) and runstream/floor (target >= 0.3x).

    python benchmarks/emit_throughput.py [--events 200000] [--rounds 9]
"""

from __future__ import annotations

from typing import Any

from _common import (
    FLOOR,
    Contender,
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
    rate_spread,
    ratio,
    run_rounds,
)

import runstream as rs

RUNSTREAM = "runstream: ctx.custom(dict), async for"
LANGGRAPH = "langgraph: astream(stream_mode=custom)"


def runstream_graph(n: int) -> rs.CompiledGraph:
    async def emit(state: dict[str, object], ctx: rs.RunContext) -> None:
        for i in range(n):
            await ctx.custom("tick", {"i": i})

    g = rs.StateGraph(name="bench")
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


async def runstream_run(app: rs.CompiledGraph) -> int:
    count = 0
    async for event in app.run({}):
        if type(event) is rs.Custom:
            count += 1
    return count


async def langgraph_run(app: Any) -> int:
    count = 0
    async for _chunk in app.astream({}, stream_mode="custom"):
        count += 1
    return count


def main() -> None:
    args = parser(__doc__, events=200_000, rounds=9).parse_args()
    n = args.events
    rs_app = runstream_graph(n)
    lg = langgraph_version()
    header("langgraph")
    contenders: dict[str, Contender] = {
        FLOOR: lambda: plain_floor(n),
        RUNSTREAM: lambda: runstream_run(rs_app),
    }
    if lg is not None:
        lg_app = langgraph_custom_graph(n)
        contenders[LANGGRAPH] = lambda: langgraph_run(lg_app)

    seconds = run_rounds(contenders, n, args.rounds, seed=args.seed)
    med = medians(seconds)
    rate = {name: per_second(n, s) for name, s in med.items()}
    print(f"{n:,} events per case, median of {args.rounds} rounds")
    print_rates(rate)
    print_ratio_header()
    print_ratio(
        "runstream / floor",
        ratio(rate[RUNSTREAM], rate[FLOOR]),
        0.3,
        spread=rate_spread(seconds, RUNSTREAM, FLOOR),
    )
    if lg is not None:
        print_ratio(
            "runstream / langgraph",
            ratio(rate[RUNSTREAM], rate[LANGGRAPH]),
            3,
            spread=rate_spread(seconds, RUNSTREAM, LANGGRAPH),
        )
    print_costs({name: per_item(n, s) for name, s in med.items()})


if __name__ == "__main__":
    main()
