"""SSE and WebSocket throughput: one client reading one run of N events on loopback.

The server (`create_app` under uvicorn, on a free loopback port) runs in a
child process of its own, so that the client (this process) and the server
do not share an event loop; on a 2-core machine they still share the machine.
Side by side against that one server, each round in a fresh order:

- floor: a bare Starlette `StreamingResponse` in the same server process,
  yielding one at a time the SSE frames of a finished run of the same graph,
  encoded once beforehand: the same number of frames, the same bytes, no run,
  bus or codec;
- runstream SSE, live: `POST /runs`, then `GET /runs/{run_id}/events` while
  the run goes on (the run's one node emits N `Custom` events flat out);
- runstream SSE, finished run: the same read after the run has completed
  (started and awaited before the clock starts): history only;
- runstream WebSocket, live: `POST /runs`, then `GET /runs/{run_id}/ws` with
  the `websockets` client, as it comes (permessage-deflate negotiated, as a
  browser would) and with compression off;
- RemoteRuns, live (when `runstream.client` is importable): `RemoteRuns.start`
  and `rs.drain(remote.events(run_id), sink)`, so every event is decoded back
  into an event object on the client.

SSE is read with a raw `asyncio.Protocol` (`_sse.SseCounter`) that counts the
frames' `id:` lines and checks the last one, with no parsing (the client
costs a fraction of what the server does); the clock runs
from the first request to the end of the stream. Prints events/s on the wall
clock, the server's CPU time per event (read from `/proc/<pid>/stat`) and
this process's, medians of the rounds, and ratios to the floor on both clocks.

    python benchmarks/sse_throughput.py [--events 30000] [--rounds 5]
"""

from __future__ import annotations

import asyncio
import random
import statistics
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import httpx
from _common import WIDTH, CountingSink, machine, parser, progress
from _sse import (
    Server,
    clocked,
    connect_readers,
    http_implementation,
    load_average,
    start_run,
    wait_readers,
)

import runstream as rs

OTHER_EVENTS = 3  # Workflow(started), StateUpdate, Workflow(completed)

FLOOR = "floor: bare StreamingResponse"
SSE_LIVE = "runstream SSE, live run"
SSE_DONE = "runstream SSE, finished run"
WS_LIVE = "runstream WebSocket, live run"
WS_PLAIN = "runstream WebSocket, no deflate"
REMOTE = "RemoteRuns.events, live run"

Timed = Callable[[], Awaitable[None]]
Prepare = Callable[[], Awaitable[Timed]]


class Clocks(NamedTuple):
    wall: float
    client_cpu: float
    server_cpu: float


def remote_runs() -> Any:
    """`runstream.client.RemoteRuns`, or None when the module is not there."""
    try:
        from runstream.client import RemoteRuns
    except ImportError:
        progress("runstream.client not importable: RemoteRuns left out")
        return None
    return RemoteRuns


async def wait_finished(base: str, run_id: str) -> None:
    """Poll `GET /runs/{run_id}` until the run has ended (the server has no push for it)."""
    async with httpx.AsyncClient() as client:
        for _ in range(3000):
            if (await client.get(f"{base}/runs/{run_id}")).json()["status"] != "running":
                return
            await asyncio.sleep(0.02)
    raise SystemExit(f"run {run_id} did not finish within a minute")


def contenders(server: Server, n: int) -> dict[str, Prepare]:
    total = n + OTHER_EVENTS

    async def sse(path: str) -> None:
        readers = await connect_readers(server.port, path, 1)
        await wait_readers(readers, total)

    async def floor() -> Timed:
        return lambda: sse(f"/bench/floor?events={n}")

    async def sse_live() -> Timed:
        async def go() -> None:
            run_id = await start_run(server.base, events=n)
            await sse(f"/runs/{run_id}/events")

        return go

    async def sse_done() -> Timed:
        run_id = await start_run(server.base, events=n)
        await wait_finished(server.base, run_id)
        return lambda: sse(f"/runs/{run_id}/events")

    def ws_live(compression: str | None) -> Prepare:
        from websockets.asyncio.client import connect

        async def prepare() -> Timed:
            async def go() -> None:
                run_id = await start_run(server.base, events=n)
                url = f"ws://127.0.0.1:{server.port}/runs/{run_id}/ws"
                count = 0
                async with connect(url, max_size=None, compression=compression) as ws:
                    async for _ in ws:
                        count += 1
                    await ws.wait_closed()
                    code = ws.close_code
                if count != total or code != 1000:
                    raise SystemExit(f"websocket: {count} messages, close code {code}")

            return go

        return prepare

    found: dict[str, Prepare] = {
        FLOOR: floor,
        SSE_LIVE: sse_live,
        SSE_DONE: sse_done,
        WS_LIVE: ws_live("deflate"),
        WS_PLAIN: ws_live(None),
    }
    remote_cls = remote_runs()
    if remote_cls is not None:

        async def remote() -> Timed:
            async def go() -> None:
                sink = CountingSink()
                async with remote_cls(server.base) as remote:
                    run_id = await remote.start("bench", {"events": n})
                    await rs.drain(remote.events(run_id), sink)
                if sink.count != total:
                    raise SystemExit(f"RemoteRuns: {sink.count} events, expected {total}")

            return go

        found[REMOTE] = remote
    return found


async def measure(n: int, n_rounds: int) -> None:
    load = load_average()  # before this script's own processes weigh in
    async with Server() as server:
        prepares = contenders(server, n)
        for prepare in prepares.values():  # warm-up, untimed
            await (await prepare())()
        progress("warm-up done")
        clocks: dict[str, list[Clocks]] = {name: [] for name in prepares}
        for r in range(n_rounds):
            order = list(prepares)
            random.shuffle(order)
            for name in order:
                go = await prepares[name]()
                clocks[name].append(Clocks(*await clocked(server, go)))
            progress(f"round {r + 1}/{n_rounds} done")

    total = n + OTHER_EVENTS
    med = {
        name: Clocks(*(statistics.median(c[i] for c in v) for i in range(3)))
        for name, v in clocks.items()
    }
    print(f"{machine()}, uvicorn with {http_implementation()}, load average before: {load}")
    print(
        f"one client reading one run of {n:,} Custom events (+{OTHER_EVENTS} others) on"
        f" loopback, median of {n_rounds} round{'s' if n_rounds > 1 else ''}"
    )
    print(
        "server: a child process (uvicorn, one event loop); client: this process,"
        " sharing the machine with it"
    )
    print(f"  {'':{WIDTH}s} {'events/s':>9s} {'server':>9s} {'client':>9s}")
    print(f"  {'':{WIDTH}s} {'wall':>9s} {'us/event':>9s} {'us/event':>9s}")
    for name, c in med.items():
        print(
            f"  {name:{WIDTH}s} {total / c.wall:9,.0f} {c.server_cpu / total * 1e6:9.2f}"
            f" {c.client_cpu / total * 1e6:9.2f}"
        )
    floor = med[FLOOR]
    print(f"\n  {'ratio to the floor':{WIDTH}s} {'events/s':>9s} {'server cpu':>10s}")
    for name, c in med.items():
        if name != FLOOR:
            print(
                f"  {name:{WIDTH}s} {floor.wall / c.wall:8.2f}x"
                f" {floor.server_cpu / c.server_cpu:9.2f}x"
            )
    sse_cost, ws_cost = med[SSE_LIVE], med[WS_LIVE]
    print(
        f"  {'WebSocket / SSE, live run':{WIDTH}s} {sse_cost.wall / ws_cost.wall:8.2f}x"
        f" {sse_cost.server_cpu / ws_cost.server_cpu:9.2f}x"
    )


def main() -> None:
    args = parser(__doc__, events=30_000).parse_args()
    asyncio.run(measure(args.events, args.rounds))


if __name__ == "__main__":
    main()
