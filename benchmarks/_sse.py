"""Helpers for the SSE benchmarks: a server in its own process, and cheap clients.

The server side (`serve`) runs in a child process started with
`python -c "..."`, so that the server and the clients do not share one event
loop (or one core) and the server's CPU time and memory can be read apart from
the clients' in `/proc/<pid>`. It serves `create_app({"bench": bench_graph()})`
and, beside it, two routes of its own under `/bench/`:

- `POST /bench/go/{key}` opens the gate a run started with `{"gate": key}`
  waits at, so that every client is connected before the first event;
- `GET /bench/floor?events=N&pad=P` streams, with a bare Starlette
  `StreamingResponse`, the SSE frames of a finished run of the same graph,
  encoded once beforehand: the same bytes runstream sends, with no bus, no
  codec and no run behind them (the floor).

The client side reads SSE with a raw `asyncio.Protocol` (no HTTP library), so
that one client process can keep up with a thousand connections and what is
measured is what the server delivers.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx

import runstream as rs

BENCH_DIR = Path(__file__).resolve().parent
STARTUP_SECONDS = 30.0

# --- the server process -----------------------------------------------------------------


def bench_graph() -> rs.CompiledGraph:
    """One node emitting `Custom("tick", {"i": i, "pad": "x" * pad})` events.

    Input: `{"events": n, "pad": 0, "rate": 0, "gate": None}`. With `rate` > 0
    event i is due `i / rate` seconds after the first, and the node sleeps
    before each event while it is ahead (one event at a time, like a model
    streaming tokens); with a `gate` key it first waits for
    `POST /bench/go/{key}`.
    """

    async def emit(state: dict[str, Any], ctx: rs.RunContext) -> None:
        n, rate, pad = state["events"], state.get("rate", 0), "x" * state.get("pad", 0)
        if state.get("gate"):
            await _gate(state["gate"]).wait()
        start = time.perf_counter()
        for i in range(n):
            if rate:
                ahead = start + i / rate - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await ctx.custom("tick", {"i": i, "pad": pad})

    g = rs.StateGraph(name="bench")
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


_gates: dict[str, asyncio.Event] = {}


def _gate(key: str) -> asyncio.Event:
    return _gates.setdefault(key, asyncio.Event())


def sse_frame(event: rs.Event) -> bytes:
    """An event as the server frames it on `GET /runs/{run_id}/events`."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event.seq,
        event.type.encode(),
        rs.codec.dumps(event),
    )


def serve(port: int) -> None:
    """Serve the bench graph and the `/bench/` routes on 127.0.0.1:`port`."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    from runstream.server import Limits, MemoryBus, create_app

    graph = bench_graph()
    # Few finished runs kept, so that many rounds against one server do not
    # pile up history (and garbage-collector work) from one round to the next.
    bus = MemoryBus(max_runs=4)
    app = create_app({"bench": graph}, bus=bus, limits=Limits(max_running=1024))
    frames: dict[tuple[int, int], list[bytes]] = {}

    async def go(request: Request) -> Response:
        _gate(request.path_params["key"]).set()
        return Response(status_code=204)

    async def floor(request: Request) -> Response:
        key = (int(request.query_params["events"]), int(request.query_params.get("pad", 0)))
        if key not in frames:
            events = [e async for e in graph.run({"events": key[0], "pad": key[1]})]
            frames[key] = [b"retry: 1000\n\n", *map(sse_frame, events)]

        async def body() -> AsyncIterator[bytes]:
            for frame in frames[key]:
                yield frame

        return StreamingResponse(
            body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    bench = Starlette(
        routes=[
            Route("/bench/go/{key}", go, methods=["POST"]),
            Route("/bench/floor", floor, methods=["GET"]),
        ]
    )

    async def asgi(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bench/"):
            await bench(scope, receive, send)
        else:
            await app(scope, receive, send)

    uvicorn.run(
        asgi,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="websockets-sansio",
        backlog=4096,
    )


def http_implementation() -> str:
    """Which HTTP/1.1 implementation uvicorn picks here ("auto")."""
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def load_average() -> str:
    """The machine's load averages over 1, 5 and 15 minutes."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """The server in a child process: start, wait until it answers, read /proc, stop."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        code = (
            f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); "
            f"import _sse; _sse.serve({self.port})"
        )
        self.process = subprocess.Popen([sys.executable, "-c", code])

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        async with httpx.AsyncClient() as client:
            while True:
                if self.process.poll() is not None:
                    raise SystemExit(f"server exited with status {self.process.returncode}")
                try:
                    if (await client.get(self.base + "/graphs")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                await asyncio.sleep(0.05)

    def cpu(self) -> float:
        """The server's CPU seconds so far (user + system)."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self) -> tuple[int, int]:
        """The server's resident set size and its peak (VmRSS, VmHWM), in bytes."""
        found: dict[str, int] = {}
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0]) * 1024
        return found["VmRSS"], found["VmHWM"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def __aenter__(self) -> Server:
        try:
            await self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()


async def start_run(base: str, **state: Any) -> str:
    """`POST /runs` for the bench graph; the new run's id."""
    async with httpx.AsyncClient() as client:
        r = await client.post(base + "/runs", json={"graph": "bench", "input": state})
        r.raise_for_status()
        run_id: str = r.json()["run_id"]
        return run_id


async def open_gate(base: str, key: str) -> None:
    async with httpx.AsyncClient() as client:
        (await client.post(f"{base}/bench/go/{key}")).raise_for_status()


# --- the raw SSE client ---------------------------------------------------------------------

_TICK_TS = re.compile(rb'"ts":([0-9.]+),"name":"tick"')
_ID = re.compile(rb"(?:^|\n)id: (\d+)\n")


class SseReader(asyncio.Protocol):
    """Reads one SSE response from a raw socket: counts events, checks ids, stamps lags.

    Sends `Connection: close`, so the end of the response is the end of the
    connection. Each chunk received is cut after its last complete frame; the
    `id`s of the frames must go up by one from 0; each tick's delivery lag is
    the receive time (`time.time()`) minus its `ts`, appended to `lags` when
    given.
    """

    def __init__(self, host: str, path: str, lags: array[float] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        self.lags = lags
        self.started: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.tail = b""
        self.events = 0
        self.ticks = 0
        self.next_id = 0
        self.error: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.started.done():
            if not data.startswith(b"HTTP/1.1 200"):
                self.error = data[:200].decode(errors="replace")
            self.started.set_result(None)
        buf = self.tail + data if self.tail else data
        cut = buf.rfind(b"\n\n") + 2
        if cut < 2:
            self.tail = buf
            return
        whole, self.tail = buf[:cut], buf[cut:]
        ids = _ID.findall(whole)
        if ids:
            first, last = int(ids[0]), int(ids[-1])
            if first != self.next_id or last != first + len(ids) - 1:
                self.error = self.error or f"ids out of order: expected {self.next_id}, got {first}"
            self.next_id = last + 1
            self.events += len(ids)
        stamps = _TICK_TS.findall(whole)
        self.ticks += len(stamps)
        if self.lags is not None:
            self.lags.extend([now - float(s) for s in stamps])

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.started.done():
            self.started.set_result(None)
        if not self.done.done():
            self.done.set_result(None)


async def connect_readers(
    port: int, path: str, count: int, lags: array[float] | None = None
) -> list[SseReader]:
    """`count` readers of `path`, each connected and past the response's first bytes."""
    loop = asyncio.get_running_loop()
    host = f"127.0.0.1:{port}"

    async def one() -> SseReader:
        _, reader = await loop.create_connection(
            lambda: SseReader(host, path, lags), "127.0.0.1", port
        )
        await reader.started
        return reader

    readers: list[SseReader] = []
    for start in range(0, count, 200):  # in batches, to stay within the listen backlog
        readers += await asyncio.gather(*(one() for _ in range(min(200, count - start))))
    for r in readers:
        if r.error:
            raise SystemExit(f"reader failed: {r.error}")
    return readers


async def wait_readers(readers: list[SseReader], events: int, ticks: int) -> None:
    """Wait until every reader's response ended; check each got every event once."""
    await asyncio.gather(*(r.done for r in readers))
    for r in readers:
        if r.error or r.events != events or r.ticks != ticks:
            raise SystemExit(
                f"reader got {r.events} events ({r.ticks} ticks), expected {events}"
                f" ({ticks}); {r.error or 'no error'}"
            )


def lag_percentiles(lags: array[float], qs: tuple[float, ...]) -> list[float]:
    """Percentiles of `lags` (seconds), from a systematic sample of at most 1M values."""
    step = max(1, len(lags) // 1_000_000)
    ordered = sorted(lags[::step])
    return [ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] for q in qs]


async def clocked(server: Server, fn: Callable[[], Awaitable[None]]) -> tuple[float, float, float]:
    """Wall seconds, client CPU seconds and server CPU seconds taken by `fn()`."""
    wall, cpu, server_cpu = time.perf_counter(), time.process_time(), server.cpu()
    await fn()
    return (
        time.perf_counter() - wall,
        time.process_time() - cpu,
        server.cpu() - server_cpu,
    )
