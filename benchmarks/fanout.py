"""Fan-out: one run into 1, 10 and 100 sinks; and 1,000 parallel emitters against one.

Side by side in one process (see `_common.py` for the method: CPU time,
medians of interleaved rounds, a fresh `asyncio.run` per case). Every ratio
is to the plain floor: one `asyncio.Queue(1024)` carrying `{"i": i}`, one
`await put` / `await get` per item, a producer task and a consumer task.

(a) sinks: a node doing `await ctx.custom("i", i)` N times, the run attached
    once with `rs.drain(app.run({}), *sinks)` to k sinks (one subscription; a
    queue of 1024 and a pump task per sink). The sinks have only `async send`
    (counting the `Custom` events) and `async close`, unless `--sink batch`
    (they also have `send_batch`). Prints source events/s, each against the
    floor, the cost per source event, k sinks' cost over one sink's, and the
    cost of each extra sink.
(b) parallel emitters: a graph whose START fans out to P nodes (default 1,000)
    run in one BSP step, each doing `await ctx.custom("i", i)` N/P times,
    against one node doing it N times; both drained into one send-only sink
    with `buffer=1024`, so the emitters block on backpressure (the case where
    waking them costs). Prints the cost per event of each and the ratio
    P nodes / one node (target: <= 1.5x); the plain floor with one producer
    and with P producer tasks on its one queue are shown for context.

    python benchmarks/fanout.py [--events 20000] [--sinks 1,10,100] [--sink send,batch]
                                [--emitters 1000] [--emitter-events 100000]
                                [--rounds 9] [--part a|b|both]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from _common import (
    COLUMN,
    FLOOR,
    Contender,
    CountingSink,
    SendOnlySink,
    custom_graph,
    header,
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

# --- (a) one run, k sinks -----------------------------------------------------


class CustomCounter(CountingSink):
    """A sink with `send_batch` that counts the `Custom` events it gets."""

    async def send(self, item: object) -> None:
        if type(item) is rs.Custom:
            self.count += 1

    async def send_batch(self, items: object) -> None:
        self.count += sum(type(item) is rs.Custom for item in items)  # type: ignore[attr-defined]


async def sinks_run(app: rs.CompiledGraph, n: int, k: int, kind: str) -> int:
    sinks: list[SendOnlySink | CustomCounter] = [
        SendOnlySink(only=rs.Custom) if kind == "send" else CustomCounter() for _ in range(k)
    ]
    await rs.drain(app.run({}), *sinks)
    counts = {s.count for s in sinks}
    if counts != {n} or not all(s.closed for s in sinks):
        raise SystemExit(f"runstream: sinks got {sorted(counts)} events, expected {n}")
    return n


def sinks_label(k: int, kind: str) -> str:
    return f"runstream: {k} {'send-only' if kind == 'send' else 'send_batch'} sink{'s' * (k > 1)}"


def part_a(n: int, counts: list[int], kinds: list[str], n_rounds: int, seed: int) -> None:
    app = custom_graph(n)
    contenders: dict[str, Contender] = {FLOOR: lambda: plain_floor(n)}
    for kind in kinds:
        for k in counts:
            contenders[sinks_label(k, kind)] = lambda k=k, kind=kind: sinks_run(app, n, k, kind)  # type: ignore[misc]
    seconds = run_rounds(contenders, n, n_rounds, seed=seed)
    med = medians(seconds)

    print(f"\n(a) one run of {n:,} events into k sinks, median of {n_rounds} rounds")
    print_rates({name: per_second(n, s) for name, s in med.items()}, unit="source events/s")
    print_ratio_header("source events/s over the floor's")
    for name in contenders:
        if name != FLOOR:
            print_ratio(
                name,
                ratio(per_second(n, med[name]), per_second(n, med[FLOOR])),
                spread=rate_spread(seconds, name, FLOOR),
            )
    print_costs({name: per_item(n, s) for name, s in med.items()}, unit="us per source event")
    for kind in kinds:
        base = med[sinks_label(counts[0], kind)]
        unit = "send-only" if kind == "send" else "send_batch"
        print(f"  {f'{unit} sinks: cost per event over 1 sink':{COLUMN}s} {'cpu':>9s}")
        for k in counts[1:]:
            s = med[sinks_label(k, kind)]
            extra = k - counts[0]
            marginal = (s.cpu - base.cpu) / extra / n
            print(
                f"  {f'{k} sinks':{COLUMN}s} {s.cpu / base.cpu:8.2f}x"
                f"   each extra sink {marginal * 1e9:,.0f} ns per event"
                f" = {marginal / (base.cpu / n):.0%} of the {counts[0]}-sink cost"
            )


# --- (b) parallel emitters ----------------------------------------------------


def parallel_graph(n: int, nodes: int) -> rs.CompiledGraph:
    """START fans out to `nodes` nodes, one BSP step; node j emits its share of n events."""

    def emitter(start: int, stop: int) -> Callable[..., Awaitable[None]]:
        async def emit(state: dict[str, object], ctx: rs.RunContext) -> None:
            for i in range(start, stop):
                await ctx.custom("i", i)

        return emit

    g = rs.StateGraph(name="bench")
    bounds = [n * j // nodes for j in range(nodes + 1)]
    for j in range(nodes):
        name = f"emit{j:04d}"
        g.add_node(name, emitter(bounds[j], bounds[j + 1]))
        g.add_edge(rs.START, name)
    return g.compile()


async def drained(app: rs.CompiledGraph) -> int:
    sink = SendOnlySink(only=rs.Custom)
    await rs.drain(app.run({}), sink, buffer=1024)
    return sink.count


def part_b(n: int, nodes: int, n_rounds: int, seed: int) -> None:
    one_app = custom_graph(n)
    many_app = parallel_graph(n, nodes)
    one = "runstream: 1 node, drain(send-only)"
    many = f"runstream: {nodes:,} parallel nodes, drain(send-only)"
    floor_many = f"floor with {nodes:,} producer tasks"
    contenders: dict[str, Contender] = {
        FLOOR: lambda: plain_floor(n),
        floor_many: lambda: plain_floor(n, producers=nodes),
        one: lambda: drained(one_app),
        many: lambda: drained(many_app),
    }
    seconds = run_rounds(contenders, n, n_rounds, seed=seed)
    med = medians(seconds)
    print(
        f"\n(b) {n:,} events from 1 node and from {nodes:,} parallel nodes"
        f" ({n // nodes:,} each), buffer 1024, median of {n_rounds} rounds"
    )
    print_costs({name: per_item(n, s) for name, s in med.items()})
    print_ratio_header("cost per event")
    print_ratio(
        f"{nodes:,} nodes / 1 node",
        ratio(med[many], med[one]),
        1.5,
        at_most=True,
        spread=rate_spread(seconds, one, many),
    )
    print_ratio(
        "1 node / floor", ratio(med[one], med[FLOOR]), spread=rate_spread(seconds, FLOOR, one)
    )
    print_ratio(
        f"{nodes:,} nodes / floor",
        ratio(med[many], med[FLOOR]),
        spread=rate_spread(seconds, FLOOR, many),
    )


def main() -> None:
    p = parser(__doc__, events=20_000, rounds=9)
    p.add_argument("--sinks", default="1,10,100", help="(a) sink counts, default 1,10,100")
    p.add_argument(
        "--sink", default="send,batch", help="(a) sink kinds: send, batch or both (default)"
    )
    p.add_argument("--emitters", type=int, default=1000, help="(b) parallel nodes, default 1000")
    p.add_argument(
        "--emitter-events", type=int, default=100_000, help="(b) events in all, default 100,000"
    )
    p.add_argument("--part", choices=["a", "b", "both"], default="both")
    args = p.parse_args()
    counts = sorted({int(k) for k in args.sinks.split(",")})
    kinds = [kind for kind in ("send", "batch") if kind in args.sink.split(",")]
    if not kinds:
        p.error("--sink takes send, batch or send,batch")
    header()
    if args.part in ("a", "both"):
        progress(f"(a) sink counts {counts}")
        part_a(args.events, counts, kinds, args.rounds, args.seed)
    if args.part in ("b", "both"):
        progress(f"(b) {args.emitters} parallel emitters")
        part_b(args.emitter_events, args.emitters, args.rounds, args.seed)


if __name__ == "__main__":
    main()
