"""Fan-out: one run of N reply chunks attached to 1, 10 and 100 `MemorySink`s.

Side by side in one process, each round in a fresh order, for each sink count k:
- runstream: `rs.attach(app.run({}), *[rs.MemorySink() for _ in range(k)])`,
  one run (one subscription), each sink with its own queue and pump task;
- floor: a bare producer putting each of N objects into k `asyncio.Queue(1024)`s,
  one consumer task per queue appending to its own list.

Prints source events/s for each sink count (median of the rounds), the cost per
source event, and the marginal cost of each extra sink in ns per event, next to
the single-sink cost per event.

    python benchmarks/fanout.py [--events 100000] [--rounds 5] [--sinks 1,10,100]
"""

from __future__ import annotations

import asyncio

from _common import (
    WIDTH,
    Contender,
    PerClock,
    machine,
    medians,
    parser,
    per_second,
    print_rates,
    progress,
    reply_graph,
    rounds,
)

import runstream as rs


class Chunk:
    """What the floor fans out: a small object standing for one event."""

    __slots__ = ("seq", "text")

    def __init__(self, seq: int, text: str) -> None:
        self.seq = seq
        self.text = text


async def floor(n: int, k: int) -> int:
    queues: list[asyncio.Queue[Chunk | None]] = [asyncio.Queue(1024) for _ in range(k)]
    outs: list[list[Chunk]] = [[] for _ in range(k)]

    async def consume(queue: asyncio.Queue[Chunk | None], out: list[Chunk]) -> None:
        while (item := await queue.get()) is not None:
            out.append(item)

    tasks = [asyncio.create_task(consume(q, out)) for q, out in zip(queues, outs, strict=True)]
    for i in range(n):
        item = Chunk(i, "tok ")
        for q in queues:
            await q.put(item)
    for q in queues:
        await q.put(None)
    await asyncio.gather(*tasks)
    if any(len(out) != n for out in outs):
        raise SystemExit("floor: a consumer missed items")
    return n


async def runstream_run(app: rs.CompiledGraph, n: int, k: int) -> int:
    sinks: list[rs.MemorySink[rs.Event]] = [rs.MemorySink() for _ in range(k)]
    stats = await rs.attach(app.run({}), *sinks).wait()
    got = {len(s.items) for s in sinks}
    if len(got) != 1 or any(st.delivered != len(sinks[0].items) for st in stats):
        raise SystemExit(f"runstream: sinks got different counts: {sorted(got)}")
    chunks = sum(type(e) is rs.AssistantReply for e in sinks[0].items)
    # n chunks written plus the closing done=True chunk.
    return chunks - 1


def label(who: str, k: int) -> str:
    unit = "sink" if who == "runstream" else "queue"
    return f"{who}, {k} {unit}{'' if k == 1 else 's'}"


async def measure(n: int, n_rounds: int, counts: list[int]) -> None:
    app = reply_graph(n)
    contenders: dict[str, Contender] = {}
    for k in counts:
        contenders[label("runstream", k)] = lambda k=k: runstream_run(app, n, k)  # type: ignore[misc]
        contenders[label("floor", k)] = lambda k=k: floor(n, k)  # type: ignore[misc]
    seconds = medians(await rounds(contenders, n, n_rounds))

    print(f"{machine()}\n{n:,} source events, median of {n_rounds} rounds")
    print_rates({name: per_second(n, s) for name, s in seconds.items()})

    for who in ("runstream", "floor"):
        unit = "sink" if who == "runstream" else "queue"
        base = seconds[label(who, counts[0])]
        base_cost = PerClock(base.wall / n, base.cpu / n)
        print(f"\n  {who}: cost per source event, and per extra {unit} per event")
        print(f"  {'ns':{WIDTH}s} {'wall':>8s} {'cpu':>8s}")
        print(
            f"  {f'{label(who, counts[0])}, per event':{WIDTH}s}"
            f" {base_cost.wall * 1e9:8.0f} {base_cost.cpu * 1e9:8.0f}"
        )
        for k in counts[1:]:
            s = seconds[label(who, k)]
            extra = k - counts[0]
            marginal = PerClock((s.wall - base.wall) / extra / n, (s.cpu - base.cpu) / extra / n)
            print(
                f"  {f'{label(who, k)}, per extra {unit}':{WIDTH}s}"
                f" {marginal.wall * 1e9:8.0f} {marginal.cpu * 1e9:8.0f}"
                f"   = {marginal.wall / base_cost.wall:.1%} (wall),"
                f" {marginal.cpu / base_cost.cpu:.1%} (cpu) of the {counts[0]}-{unit} cost"
            )


def main() -> None:
    p = parser(__doc__, events=100_000)
    p.add_argument("--sinks", default="1,10,100", help="sink counts, comma-separated")
    args = p.parse_args()
    counts = sorted({int(k) for k in args.sinks.split(",")})
    progress(f"sink counts {counts}")
    asyncio.run(measure(args.events, args.rounds, counts))


if __name__ == "__main__":
    main()
