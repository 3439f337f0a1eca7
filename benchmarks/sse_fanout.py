"""SSE fan-out: one run of N events read by 1, 100 and 1,000 SSE clients, next to a bare endpoint.

The server (`create_app` under uvicorn, on a free loopback port) runs in a
child process of its own, so the clients (in this process) and the server do
not share an event loop; on a 2-core machine they still share the machine.
One server serves every measurement, side by side, each round in a fresh
random order of client counts and, for each count, of the two contenders:

- floor: a bare Starlette `StreamingResponse` in the same server process
  (`GET /bench/floor`), an async generator yielding the SSE frames of a
  finished run of the same graph, encoded beforehand: the same number of
  events, the same bytes, no run, no bus, no codec. It yields them 64 frames
  per chunk, the most runstream writes at once, so that both make the same
  writes; `--floor-batch 1` makes it yield one frame at a time, as a
  hand-written SSE endpoint does (much slower: one write per frame);
- runstream: `POST /runs` of the bench graph (one node emitting N
  `Custom("tick", {"i": i, "pad": ""})` events flat out, or `--rate` events/s),
  read live on `GET /runs/{run_id}/events`.

Both wait at a gate until all k clients have the response's first bytes;
then the gate opens and the clock starts. The clock stops when every client
has the whole stream and the server has closed every connection.

The clients are `SseCounter`s (see `_sse.py`): raw `asyncio.Protocol`
connections that do not parse. Each checks the id of the last frame it got;
one in 16 also counts every frame with `bytes.count` (no frame lost, none
repeated). That costs a fraction of what the server spends per event, so
the benchmark measures the server rather than itself; the client's CPU time
per event is printed next to the server's.

Prints, per client count and contender: events delivered per second in total
(wall clock), the server's and this process's CPU time per delivered event,
events per read on the client side, the server's peak RSS growth during the
measurement (VmHWM, reset before each one) per client; then, from medians of
the rounds, the ratios runstream / floor of wall time and of server CPU time,
and the client's CPU time over the server's. With `--lags`, also the
delivery lag of the runstream run (one sample per read: arrival time minus
the first `ts` in the read, the oldest event in it; one machine, one clock).

    python benchmarks/sse_fanout.py [--events 10000] [--clients 1,100,1000]
        [--rounds 3] [--rate 0] [--floor-batch 64] [--lags]
    python benchmarks/sse_fanout.py --clients 1000 --rounds 5   # the issue's case only

At 1 client the wall ratio is mostly the run itself (a live run emits and
encodes each event; the floor's were encoded beforehand); at 100 and 1,000
it is the cost of serving. The server's CPU time comes from `/proc` in 10 ms
ticks, too coarse for the floor at 1 client (printed as nan).

The default (10,000 events, 3 rounds) takes about a minute on a 2-core
machine, most of it the 1,000-client case (10 M frames per contender).
"""

from __future__ import annotations

import asyncio
import math
import random
import resource
import statistics
from array import array
from typing import NamedTuple

import httpx
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
FLOOR = "floor"
RUNSTREAM = "runstream"
TARGET = 1.5  # runstream / floor wall time at 1,000 clients, at most
FLOOR_BATCH = 64  # frames per chunk of the floor the target is for: runstream's writes


class Result(NamedTuple):
    wall: float
    client_cpu: float
    server_cpu: float
    growth: int  # bytes of peak RSS growth during the measurement
    reads: int  # reads by all clients together


class Setup(NamedTuple):
    server: Server
    http: httpx.AsyncClient  # opens the gates: one connection, kept open
    rate: float
    floor_batch: int


async def read_once(
    setup: Setup, name: str, k: int, n: int, key: str, lags: array[float] | None
) -> Result:
    """One gated stream of `n` ticks read by `k` clients, from the floor or from a run."""
    server = setup.server
    if name == FLOOR:
        path = f"/bench/floor?events={n}&batch={setup.floor_batch}&gate={key}"
        lags = None  # the floor's frames carry the time they were encoded, not sent
    else:
        run_id = await start_run(server.base, events=n, rate=setup.rate, gate=key)
        path = f"/runs/{run_id}/events"
    server.reset_peak()
    before, _ = server.memory()
    readers = await connect_readers(server.port, path, k, lags)

    async def go() -> None:
        await open_gate(server.base, key, setup.http)
        await wait_readers(readers, n + OTHER_EVENTS)

    wall, client_cpu, server_cpu = await clocked(server, go)
    _, peak = server.memory()
    return Result(wall, client_cpu, server_cpu, peak - before, sum(r.reads for r in readers))


async def measure(
    n: int, n_rounds: int, counts: list[int], rate: float, floor_batch: int, with_lags: bool
) -> None:
    load = load_average()  # before this script's own processes weigh in
    results: dict[tuple[int, str], list[Result]] = {
        (k, name): [] for k in counts for name in (FLOOR, RUNSTREAM)
    }
    lags: dict[int, array[float]] = {k: array("d") for k in counts}
    async with Server() as server, httpx.AsyncClient() as http:
        setup = Setup(server, http, rate, floor_batch)
        for name in (FLOOR, RUNSTREAM):
            await read_once(setup, name, 2, WARMUP_EVENTS, f"warm-up-{name}", None)
        progress("warm-up done")
        for r in range(n_rounds):
            order = list(counts)
            random.shuffle(order)
            for k in order:
                names = [FLOOR, RUNSTREAM]
                random.shuffle(names)
                for name in names:
                    key = f"{name}-{k}-{r}"
                    got = await read_once(setup, name, k, n, key, lags[k] if with_lags else None)
                    results[k, name].append(got)
                progress(f"round {r + 1}/{n_rounds}: {k} clients done")

    def med(k: int, name: str, field: str) -> float:
        return float(statistics.median(getattr(x, field) for x in results[k, name]))

    total = n + OTHER_EVENTS
    print(f"{machine()}, uvicorn with {http_implementation()}, load average before: {load}")
    pace = f"paced at {rate:,.0f} events/s" if rate else "emitted flat out"
    print(
        f"one stream of {total:,} events ({n:,} Custom, {pace}) read by k SSE clients on"
        f" loopback; median of {n_rounds} round{'s' if n_rounds > 1 else ''}"
    )
    print(
        "server: a child process (uvicorn, one event loop); clients: raw asyncio"
        " connections in this process counting frames, sharing the machine with it"
    )
    print(
        f"  {'clients':>7s} {'':10s} {'delivered':>11s} {'server':>8s} {'client':>8s}"
        f" {'events':>7s} {'wall':>7s} {'RSS growth':>10s}"
    )
    print(
        f"  {'':>7s} {'':10s} {'events/s':>11s} {'us/event':>8s} {'us/event':>8s}"
        f" {'per read':>7s} {'s':>7s} {'per client':>10s}"
    )
    for k in counts:
        delivered = k * total
        for name in (FLOOR, RUNSTREAM):
            print(
                f"  {k:7,d} {name:10s} {delivered / med(k, name, 'wall'):11,.0f}"
                f" {med(k, name, 'server_cpu') / delivered * 1e6:8.2f}"
                f" {med(k, name, 'client_cpu') / delivered * 1e6:8.2f}"
                f" {delivered / med(k, name, 'reads'):7.1f}"
                f" {med(k, name, 'wall'):7.2f}"
                f" {med(k, name, 'growth') / k / 1024:7.1f}KiB"
            )
    print(
        f"\n  {'runstream / floor':24s} {'wall time':>9s} {'server cpu':>10s}"
        f"   client cpu / server cpu (runstream)"
    )
    for k in counts:
        wall = ratio(med(k, RUNSTREAM, "wall"), med(k, FLOOR, "wall"))
        cpu = ratio(med(k, RUNSTREAM, "server_cpu"), med(k, FLOOR, "server_cpu"))
        own = ratio(med(k, RUNSTREAM, "client_cpu"), med(k, RUNSTREAM, "server_cpu"))
        verdict = ""
        if k == 1000 and floor_batch == FLOOR_BATCH:
            verdict = f"   target <= {TARGET}x: {'met' if wall <= TARGET else 'MISSED'}"
        print(f"  {f'{k:,} clients':24s} {wall:8.2f}x {cpu:9.2f}x   {own:9.2f}{verdict}")
    if with_lags:
        print("\n  runstream delivery lag (one sample per read), ms: p50, p99, max")
        for k in counts:
            if lags[k]:
                p50, p99, worst = lag_percentiles(lags[k], (50, 99, 100))
                print(f"  {k:7,d} clients {p50 * 1e3:9.1f} {p99 * 1e3:9.1f} {worst * 1e3:9.1f}")
    for k in counts:
        for name in (FLOOR, RUNSTREAM):
            walls = ", ".join(f"{x.wall:.2f}" for x in results[k, name])
            print(f"  {k:,} clients, {name}: {walls} s per round (wall)")


def ratio(a: float, b: float) -> float:
    """`a / b`; NaN when `b` is 0 (a CPU time below the 10 ms tick of `/proc`)."""
    return a / b if b else math.nan


def main() -> None:
    p = parser(__doc__, events=10_000, rounds=3)
    p.add_argument("--clients", default="1,100,1000", help="client counts, comma-separated")
    p.add_argument(
        "--rate", type=float, default=0, help="events per second the run emits (0: flat out)"
    )
    p.add_argument(
        "--floor-batch",
        type=int,
        default=FLOOR_BATCH,
        help=f"frames per chunk the floor writes (default {FLOOR_BATCH}, as runstream;"
        " 1: one per write)",
    )
    p.add_argument("--lags", action="store_true", help="sample the runstream delivery lag")
    args = p.parse_args()
    counts = sorted({int(k) for k in args.clients.split(",")})
    # A thousand connections and their server ends: raise the open-file limit
    # (the server process inherits it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * max(counts) + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    progress(f"client counts {counts}")
    asyncio.run(measure(args.events, args.rounds, counts, args.rate, args.floor_batch, args.lags))


if __name__ == "__main__":
    main()
