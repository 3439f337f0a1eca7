"""Many runs across processes: 3 API processes + 2 workers vs one process on MemoryBus.

Real processes on loopback. For each bus, this script starts `--runs`
concurrent runs of `--events` events each (the ticker graph, no pauses), each
with one SSE reader; a run is started on one API process (round robin) and
read on the next one, so every event crosses the broker. On Redis and NATS:
`runstream serve --role api` x3 and `runstream worker --concurrency 200` x2;
for scale, one `runstream serve --max-running 200` on the in-memory bus,
which starts, executes and serves every run itself. The readers are raw-socket SSE clients
(`_sse.SseCounter`) that count every frame and check the last id, so a lost
or repeated event fails the run.

Prints the wall time from the first start to the last reader's end, the
events delivered per second (runs x events / wall time), and each run's
delivery time (start to end of its reader), p50 and p99.

    python benchmarks/bus_scale.py [--runs 200] [--events 1000]
"""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import httpx
from _common import header, parser, percentile, progress
from _sse import SseCounter, wait_readers
from bus_lag import brokers, process  # the brokers the tests start

APIS, WORKERS = 3, 2


async def deliver(apis: list[str], runs: int, events: int) -> tuple[float, list[float]]:
    """Start `runs` runs round robin on `apis`, read each on the next; wall s, per-run s."""
    loop = asyncio.get_running_loop()
    durations: list[float] = []
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=runs)) as client:

        async def one(i: int) -> None:
            began = time.perf_counter()
            started = await client.post(
                f"{apis[i % len(apis)]}/runs",
                json={"graph": "ticker", "input": {"n": events - 3}},
            )
            if started.status_code != 201:
                raise SystemExit(f"POST /runs: {started.status_code} {started.text}")
            run_id = started.json()["run_id"]
            where = urlsplit(apis[(i + 1) % len(apis)])
            _, reader = await loop.create_connection(
                lambda: SseCounter(where.netloc, f"/runs/{run_id}/events"),
                where.hostname,
                where.port,
            )
            await wait_readers([reader], events)
            durations.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(runs)))
        return time.perf_counter() - began, durations


def main() -> None:
    p = parser(__doc__, events=1_000, rounds=None)
    p.add_argument("--runs", type=int, default=200, help="default 200")
    args = p.parse_args()
    runs, n = args.runs, args.events
    header(
        "redis",
        "hiredis",
        "nats-py",
        method="method: wall clock, one run of each setup after a warm-up",
    )
    print(f"{runs} concurrent runs x {n:,} events, one SSE reader each\n")
    print(f"  {'setup':46s} {'wall s':>7s} {'events/s':>9s} {'run p50 s':>10s} {'run p99 s':>10s}")
    with brokers() as (redis_url, nats_url):
        setups = {
            "memory (one process: start, run, serve)": "memory://",
            f"redis ({APIS} API processes + {WORKERS} workers)": redis_url,
            f"nats ({APIS} API processes + {WORKERS} workers)": nats_url,
        }
        for label, bus in setups.items():
            progress(f"{label}...")
            split = bus != "memory://"
            with ExitStack() as procs:
                apis = [
                    procs.enter_context(
                        process(
                            *("serve", "_support.apps:graphs", "--bus", bus, "--port", "0"),
                            *("--role", "api" if split else "all", "--max-running", str(runs)),
                        )
                    )
                    for _ in range(APIS if split else 1)
                ]
                for _ in range(WORKERS if split else 0):
                    procs.enter_context(
                        process(
                            *("worker", "_support.apps:graphs", "--bus", bus),
                            *("--concurrency", str(runs)),
                        )
                    )
                asyncio.run(deliver(apis, min(runs, 20), n))  # warm-up
                wall, durations = asyncio.run(deliver(apis, runs, n))
            print(
                f"  {label:46s} {wall:7.2f} {runs * n / wall:9.0f} "
                f"{statistics.median(durations):10.2f} {percentile(durations, 99):10.2f}"
            )


if __name__ == "__main__":
    main()
