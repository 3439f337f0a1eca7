"""Memory per run waiting for an answer: held in its task, or suspended in a checkpoint.

`--runs` runs of a graph whose one node asks a question (`ctx.ask`) are
started through a `Runtime` (role `all`, concurrency above `--runs`) and
left waiting. Measured, per waiting run:

- **in this process**: Python heap growth (`tracemalloc`, after
  `gc.collect()`), from before the first start to when every run waits;
- **in the broker** (Redis only): `INFO memory` `used_memory` growth.

Cases:

- held: the graph has no checkpointer: each waiting run keeps its task,
  its coroutine frames, its sink pipeline and its inbox slot (MemoryBus);
- suspended, MemoryBus + MemoryCheckpointer: each run's task ends; the run
  is its record, its 3 events and its checkpoint, all in this process;
- suspended, RedisBus as bus and checkpointer: the same, kept in a real
  `redis-server` on loopback (started here): nothing in this process.

The target (issue 12) is at most 2 KB per suspended run with a
checkpointer, nothing in memory but the record.

    python benchmarks/suspended_memory.py [--runs 2000]
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import header, parser, progress

import runstream as rs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _support.apps import booker
from _support.brokers import redis_server


async def waiting(rt: rs.Runtime, run_ids: list[str], suspended: bool) -> None:
    """Return once every run waits (nothing announces it: look every 50 ms)."""
    while True:
        records = [await rt.status(run_id) for run_id in run_ids]
        if all(r is not None and r.status == "awaiting" for r in records) and (
            not suspended or rt.executing == 0
        ):
            return
        await asyncio.sleep(0.05)


async def redis_used(url: str) -> int:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        info = await client.info("memory")
        return int(info["used_memory"])
    finally:
        await client.aclose()


async def case(
    runs: int,
    make_bus: Callable[[], Any],
    store: Callable[[Any], rs.Checkpointer | None],
    redis_url: str | None,
) -> tuple[float, float | None]:
    bus = make_bus()
    checkpointer = store(bus)
    graphs = {"booker": booker(checkpointer)}
    async with rs.Runtime(graphs, bus=bus, concurrency=runs + 10) as rt:
        warm = await rt.start("booker")  # first-use allocations out of the way
        await waiting(rt, [warm], checkpointer is not None)
        gc.collect()
        broker_before = None if redis_url is None else await redis_used(redis_url)
        before = tracemalloc.get_traced_memory()[0]
        run_ids = [await rt.start("booker") for _ in range(runs)]
        await waiting(rt, run_ids, checkpointer is not None)
        del run_ids
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        broker = None if redis_url is None else (await redis_used(redis_url) - broker_before) / runs  # type: ignore[operator]
        await rt.stop_runs()
    if isinstance(bus, rs.RedisBus):
        await bus.aclose()
    return (after - before) / runs, broker


def main() -> None:
    p = parser(__doc__, events=None, rounds=None)
    p.add_argument("--runs", type=int, default=2000, help="waiting runs, default 2000")
    args = p.parse_args()
    header("redis", method="method: tracemalloc heap growth per waiting run, after gc.collect()")
    print(f"waiting runs: {args.runs:,}\n")
    with redis_server() as server:
        url = server.url + "/0"
        cases: dict[str, tuple[Callable[[], Any], Callable[[Any], Any], str | None]] = {
            "held in its task (no checkpointer, MemoryBus)": (
                rs.MemoryBus,
                lambda bus: None,
                None,
            ),
            "suspended (MemoryBus + MemoryCheckpointer)": (
                rs.MemoryBus,
                lambda bus: rs.MemoryCheckpointer(),
                None,
            ),
            "suspended (RedisBus, the bus as checkpointer)": (
                lambda: rs.RedisBus(url, prefix="bench"),
                lambda bus: bus,
                url,
            ),
        }
        print(f"  {'case':48s} {'bytes/run here':>15s} {'bytes/run in Redis':>19s}")
        for name, (make_bus, store, redis_url) in cases.items():
            progress(name)
            tracemalloc.start()
            here, broker = asyncio.run(case(args.runs, make_bus, store, redis_url))
            tracemalloc.stop()
            shown = "" if broker is None else f"{broker:19,.0f}"
            print(f"  {name:48s} {here:15,.0f} {shown}")


if __name__ == "__main__":
    main()
