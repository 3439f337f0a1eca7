"""MemoryBus.open: what starting a run costs the server's loop as finished runs pile up.

Every `POST /runs` calls `bus.open(run_id, ...)` on the event loop, so its cost
is paid by every reader of every run while it lasts. The bus is first filled
with K finished runs (each opened, then given its started and completed
`Workflow` events), then `open` is timed for M more runs, each finished in
turn (not timed) so that the kept set stays full:

- below `max_runs` (`MemoryBus(max_runs=K + M + 1)`): nothing to forget, the
  cost of keeping K finished runs around;
- past `max_runs` (`MemoryBus(max_runs=K)`): every open forgets the oldest
  finished run.

For scale, the same loop with `open` replaced by a dict insert (the least any
registry of runs costs). Prints microseconds per `open` (CPU time, median of
the rounds) for each K.

    python benchmarks/bus_open.py [--kept 1000,10000] [--opens 2000] [--rounds 5]

To compare with another version of runstream, put its `src` first on the path:
`PYTHONPATH=/path/to/old/src python benchmarks/bus_open.py`.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from _common import header, parser, progress

import runstream as rs
from runstream.server import MemoryBus


def _ends(run_id: str) -> list[rs.Event]:
    run = rs.RunInfo(run_id=run_id, agent="g")
    return [
        rs.Workflow(run=run, seq=0, phase=rs.Phase.STARTED),
        rs.Workflow(run=run, seq=1, phase=rs.Phase.COMPLETED),
    ]


async def _finished(bus: MemoryBus, run_id: str) -> None:
    await bus.open(run_id, graph="g", owner=None)
    await bus.append(run_id, _ends(run_id))


async def time_opens(kept: int, opens: int, *, past_max_runs: bool) -> float:
    """CPU seconds per `open`, with `kept` finished runs on the bus."""
    bus = MemoryBus(max_runs=kept if past_max_runs else kept + opens + 1)
    for i in range(kept):
        await _finished(bus, f"kept-{i}")
    ids = [f"new-{i}" for i in range(opens)]
    ends = {run_id: _ends(run_id) for run_id in ids}
    spent = 0.0
    for run_id in ids:
        start = time.process_time()
        await bus.open(run_id, graph="g", owner=None)
        spent += time.process_time() - start
        await bus.append(run_id, ends[run_id])
    return spent / opens


async def time_dict(kept: int, opens: int) -> float:
    """CPU seconds per insert into a dict of `kept` entries: the floor of any registry."""
    runs = {f"kept-{i}": object() for i in range(kept)}
    spent = 0.0
    for i in range(opens):
        start = time.process_time()
        runs[f"new-{i}"] = object()
        spent += time.process_time() - start
    return spent / opens


def main() -> None:
    p = parser(__doc__, events=None, rounds=5)
    p.add_argument("--kept", default="1000,10000", help="finished runs kept, comma-separated")
    p.add_argument("--opens", type=int, default=2000, help="opens timed per case, default 2000")
    args = p.parse_args()
    kept_counts = [int(k) for k in args.kept.split(",")]
    header(method="method: CPU time of each open alone (time.process_time), median of rounds")
    cases = {
        "dict insert (the floor of any registry)": lambda k: time_dict(k, args.opens),
        "MemoryBus.open, below max_runs": lambda k: time_opens(k, args.opens, past_max_runs=False),
        "MemoryBus.open, past max_runs": lambda k: time_opens(k, args.opens, past_max_runs=True),
    }
    results: dict[tuple[str, int], list[float]] = {}
    for r in range(args.rounds):
        for kept in kept_counts:
            for name, case in cases.items():
                results.setdefault((name, kept), []).append(asyncio.run(case(kept)))
        progress(f"round {r + 1}/{args.rounds} done")
    print(f"{args.opens:,} opens per case, median of {args.rounds} rounds")
    label = "us per open, finished runs kept:"
    print(f"  {label:<44}" + "".join(f"{k:>12,}" for k in kept_counts))
    for name in cases:
        row = "".join(f"{statistics.median(results[name, k]) * 1e6:>12.2f}" for k in kept_counts)
        print(f"  {name:<44}{row}")


if __name__ == "__main__":
    main()
