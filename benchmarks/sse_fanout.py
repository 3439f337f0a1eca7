"""SSE fan-out: one run of N events read by 1, 100 and 1,000 concurrent SSE clients.

The server (`create_app` under uvicorn, on a free loopback port) runs in a
child process of its own, so the clients (in this process) and the server do
not share an event loop; on a 2-core machine they still share the machine.
Each measurement starts a fresh server, so that its memory figures start
clean:

1. warm-up: one run of 1,000 events read by 2 clients (imports, caches);
2. the server's peak RSS (`VmHWM` in `/proc/<pid>/status`) is read;
3. `POST /runs` starts a run of the bench graph: one node emitting N
   `Custom("tick", {"i": i, "pad": ""})` events, flat out (or `--rate` events/s),
   after waiting at a gate;
4. k clients open `GET /runs/{run_id}/events`; once every one has the
   response's first bytes, the gate opens and the clock starts;
5. the clock stops when every client has received the whole stream (N ticks
   plus the run's 3 other events, ids 0, 1, 2, ... in order, checked) and the
   server has closed the connection; then `VmHWM` is read again.

The clients are raw `asyncio.Protocol` connections, cheaper per event than
an HTTP library (about 9 us against 13-17 us for httpx's `aiter_lines`), so
that 1,000 of them fit in one process and more of the machine is left to the
server; each stamps every tick on arrival (`time.time()`), and its delivery
lag is that minus the tick's `ts`.

Prints, per client count: events delivered per second in total (wall clock),
the server's and this process's CPU time per delivered event, p50 / p99 / max
delivery lag, and the server's peak RSS growth: in total, per client, and per
extra client (`(growth(k) - growth(1)) / (k - 1)`, which leaves out the run's
own history, kept by the bus). Medians of the rounds, in a fresh random order
each round.

    python benchmarks/sse_fanout.py [--events 5000] [--clients 1,100,1000]
        [--rounds 1] [--rate 0]

The default run is 5,000 events so that the script ends within about two
minutes on a 2-core machine: 1,000 clients of 5,000 events are 5 M frames, and
the server spends about 11 us of CPU on each. `--events 10000` doubles that.
"""

from __future__ import annotations

import asyncio
import random
import resource
import statistics
from array import array
from typing import NamedTuple

from _common import machine, parser, progress
from _sse import (
    Server,
    clocked,
    connect_readers,
    http_implementation,
    lag_percentiles,
    load_average,
    open_gate,
    start_run,
    wait_readers,
)

OTHER_EVENTS = 3  # Workflow(started), StateUpdate, Workflow(completed)
WARMUP_EVENTS = 1_000
MIB = 1024 * 1024


class Result(NamedTuple):
    wall: float
    client_cpu: float
    server_cpu: float
    p50: float
    p99: float
    worst: float
    growth: int  # bytes of peak RSS growth during the measurement
    peak: int  # the server's peak RSS after it


async def read_run(server: Server, k: int, n: int, rate: float, key: str) -> Result:
    """One gated run of `n` ticks read by `k` clients."""
    lags: array[float] = array("d")
    _, before = server.memory()
    run_id = await start_run(server.base, events=n, rate=rate, gate=key)
    readers = await connect_readers(server.port, f"/runs/{run_id}/events", k, lags)

    async def go() -> None:
        await open_gate(server.base, key)
        await wait_readers(readers, n + OTHER_EVENTS, n)

    wall, client_cpu, server_cpu = await clocked(server, go)
    _, after = server.memory()
    if len(lags) != k * n:
        raise SystemExit(f"{len(lags)} lags stamped, expected {k * n}")
    p50, p99, worst = lag_percentiles(lags, (50, 99, 100))
    return Result(wall, client_cpu, server_cpu, p50, p99, worst, after - before, after)


async def measure_once(k: int, n: int, rate: float) -> Result:
    async with Server() as server:
        await read_run(server, 2, WARMUP_EVENTS, 0, "warm-up")
        return await read_run(server, k, n, rate, "measured")


async def measure(n: int, n_rounds: int, counts: list[int], rate: float) -> None:
    load = load_average()  # before this script's own processes weigh in
    results: dict[int, list[Result]] = {k: [] for k in counts}
    for r in range(n_rounds):
        order = list(counts)
        random.shuffle(order)
        for k in order:
            results[k].append(await measure_once(k, n, rate))
            progress(f"round {r + 1}/{n_rounds}: {k} clients done")

    def med(k: int, field: str) -> float:
        return float(statistics.median(getattr(x, field) for x in results[k]))

    print(f"{machine()}, uvicorn with {http_implementation()}, load average before: {load}")
    pace = f"paced at {rate:,.0f} events/s" if rate else "emitted flat out"
    print(
        f"one run of {n:,} Custom events ({pace}) read by k SSE clients on loopback;"
        f" median of {n_rounds} round{'s' if n_rounds > 1 else ''}"
    )
    print(
        "server: a child process (uvicorn, one event loop); clients: raw asyncio"
        " connections in this process, sharing the machine with it"
    )
    print(
        f"  {'clients':>7s} {'delivered':>11s} {'server':>8s} {'client':>8s}"
        f" {'lag p50':>8s} {'lag p99':>8s} {'lag max':>8s}"
        f" {'peak RSS':>9s} {'growth':>8s} {'per':>8s} {'per extra':>9s}"
    )
    print(
        f"  {'':>7s} {'events/s':>11s} {'us/event':>8s} {'us/event':>8s}"
        f" {'ms':>8s} {'ms':>8s} {'ms':>8s}"
        f" {'MiB':>9s} {'MiB':>8s} {'client':>8s} {'client':>9s}"
    )
    base_growth = med(counts[0], "growth")
    for k in counts:
        delivered = k * (n + OTHER_EVENTS)
        growth = med(k, "growth")
        extra = (
            f"{(growth - base_growth) / (k - counts[0]) / 1024:6.1f}KiB" if k > counts[0] else ""
        )
        print(
            f"  {k:7,d} {delivered / med(k, 'wall'):11,.0f}"
            f" {med(k, 'server_cpu') / delivered * 1e6:8.2f}"
            f" {med(k, 'client_cpu') / delivered * 1e6:8.2f}"
            f" {med(k, 'p50') * 1e3:8.1f} {med(k, 'p99') * 1e3:8.1f} {med(k, 'worst') * 1e3:8.1f}"
            f" {med(k, 'peak') / MIB:9.1f} {growth / MIB:8.1f}"
            f" {growth / k / 1024:5.1f}KiB {extra:>9s}"
        )
    for k in counts:
        walls = ", ".join(f"{x.wall:.2f}" for x in results[k])
        print(f"  {k:,} clients: {walls} s per round (wall)")


def main() -> None:
    p = parser(__doc__, events=5_000, rounds=1)
    p.add_argument("--clients", default="1,100,1000", help="client counts, comma-separated")
    p.add_argument(
        "--rate", type=float, default=0, help="events per second the run emits (0: flat out)"
    )
    args = p.parse_args()
    counts = sorted({int(k) for k in args.clients.split(",")})
    # A thousand connections and their server ends: raise the open-file limit
    # (the server process inherits it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * max(counts) + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    progress(f"client counts {counts}")
    asyncio.run(measure(args.events, args.rounds, counts, args.rate))


if __name__ == "__main__":
    main()
