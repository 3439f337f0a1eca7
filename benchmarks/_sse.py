"""Helpers for the SSE benchmarks: a server in its own process, and cheap clients.

The server side (`serve`) runs in a child process started with
`python -c "..."`, so that the server and the clients do not share one event
loop (or one core) and the server's CPU time and memory can be read apart from
the clients' in `/proc/<pid>`. It serves `create_app({"bench": bench_graph()})`
(`Custom` ticks, or with `{"reply": True}` one streamed reply) and, beside it,
two routes of its own under `/bench/`:

- `POST /bench/go/{key}` opens the gate a run started with `{"gate": key}`
  waits at, so that every client is connected before the first event;
- `GET /bench/floor?events=N&pad=P&batch=B&gate=KEY` streams, with a bare
  Starlette `StreamingResponse` (an async generator), the SSE frames of a
  finished run of the same graph, encoded once beforehand: the same bytes
  runstream sends, with no bus, no codec and no run behind them (the floor).
  It yields them `B` frames per chunk (default 1, as a hand-written SSE
  endpoint does; runstream writes up to 64 at once). With `gate`, it sends the
  `retry:` block, then waits at that gate before the events.

The client side (`SseCounter`) reads SSE with a raw `asyncio.Protocol` (no
HTTP library, no parsing): it checks the id of the last frame and, on a
sample of the connections, counts the frames' `id:` lines (or `data:` lines,
for the UI protocol formats' streams) with `bytes.count`,
so that one client process keeps up with a thousand connections, costs less
than the server, and what is measured is what the server delivers.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
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


REPLY_TEXT = "tok "  # each chunk of the bench graph's streamed reply
REPLY_OTHER_EVENTS = 4  # a reply's run: Workflow(started), the done=True reply, StateUpdate, end


def bench_graph() -> rs.CompiledGraph:
    """One node emitting `Custom("tick", {"i": i, "pad": "x" * pad})` events.

    Input: `{"events": n, "pad": 0, "rate": 0, "gate": None, "reply": False}`.
    With `rate` > 0 event i is due `i / rate` seconds after the first, and the
    node sleeps before each event while it is ahead (one event at a time, like
    a model streaming tokens); with a `gate` key it first waits for
    `POST /bench/go/{key}`. With `reply`, the node streams one reply of `n`
    chunks of `REPLY_TEXT` instead (`ctx.stream_reply()`, n `AssistantReply`
    events and the closing `done=True` one), paced and gated the same way.
    """

    async def emit(state: dict[str, Any], ctx: rs.RunContext) -> None:
        n, rate, pad = state["events"], state.get("rate", 0), "x" * state.get("pad", 0)
        if state.get("gate"):
            await _gate(state["gate"]).wait()
        start = time.perf_counter()
        if state.get("reply"):
            async with ctx.stream_reply() as m:
                for i in range(n):
                    if rate:
                        await _pace(start + i / rate)
                    await m.write(REPLY_TEXT)
            return
        for i in range(n):
            if rate:
                await _pace(start + i / rate)
            await ctx.custom("tick", {"i": i, "pad": pad})

    g = rs.StateGraph(name="bench")
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


async def _pace(due: float) -> None:
    """Sleep until `due` (a `time.perf_counter()` value) when it is still ahead."""
    ahead = due - time.perf_counter()
    if ahead > 0:
        await asyncio.sleep(ahead)


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
    chunks: dict[tuple[int, int, int], list[bytes]] = {}
    encoding = asyncio.Lock()

    async def go(request: Request) -> Response:
        _gate(request.path_params["key"]).set()
        return Response(status_code=204)

    async def floor(request: Request) -> Response:
        query = request.query_params
        n, pad, batch = int(query["events"]), int(query.get("pad", 0)), int(query.get("batch", 1))
        async with encoding:  # once, however many clients ask at the same time
            if (n, pad, batch) not in chunks:
                if (n, pad) not in frames:
                    events = [e async for e in graph.run({"events": n, "pad": pad})]
                    frames[n, pad] = [sse_frame(e) for e in events]
                every = frames[n, pad]
                chunks[n, pad, batch] = [
                    b"".join(every[i : i + batch]) for i in range(0, len(every), batch)
                ]
        gate = query.get("gate")

        async def body() -> AsyncIterator[bytes]:
            yield b"retry: 1000\n\n"
            if gate:
                await _gate(gate).wait()
            for chunk in chunks[n, pad, batch]:
                yield chunk

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

    def reset_peak(self) -> None:
        """Reset the server's peak RSS (`VmHWM`) to its current RSS."""
        with open(f"/proc/{self.process.pid}/clear_refs", "w") as f:
            f.write("5")

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


async def open_gate(base: str, key: str, client: httpx.AsyncClient | None = None) -> None:
    """Open the gate `key`; with an open `client`, on its connection (cheaper in a timed span)."""
    if client is None:
        async with httpx.AsyncClient() as own:
            (await own.post(f"{base}/bench/go/{key}")).raise_for_status()
    else:
        (await client.post(f"{base}/bench/go/{key}")).raise_for_status()


# --- the raw SSE client ---------------------------------------------------------------------

# Every event's frame starts with its `id:` line, right after a line end: the
# blank line that ends the previous frame, or the CRLF of an HTTP/1.1 chunk-size
# line (a `retry:` line before it, when the server sends one with the first
# event). Nothing else in a frame can hold it: the codec's JSON has no raw line
# breaks, and a keep-alive comment or a `retry:` block has no `id:` line.
_ID_LINE = b"\nid: "
# Every SSE message with data has one `data:` line (runstream's after its
# `event:` line, the UI protocols' after their `id:` line; the AI SDK's closing
# `data: [DONE]` after a blank line or a chunk-size line), and no other line
# starts with it: counting these counts the messages a client hands out.
DATA_LINE = b"\ndata: "
_TAIL = 512  # bytes of the stream kept for the final check: more than one frame
_TS = b'"ts":'
COUNT_EVERY = 16  # connect_readers: one reader in this many counts every frame


class SseCounter(asyncio.Protocol):
    """Reads one SSE response from a raw socket and checks it, at a cost per read.

    No parsing. Every reader keeps the last bytes of the stream and, at the
    end, checks the id of the last frame. With `count`, it also counts the
    frames' `id:` lines (or the lines starting with `marker`: `DATA_LINE`
    counts the messages with data) with `bytes.count`, plus those cut in two
    by the boundary between reads (found in the few bytes either side of it),
    and the count must equal the number of frames: no frame lost, none
    repeated.
    Counting is the costly part: `bytes.count` scans about 1.6 GB/s here,
    0.14 us per 230-byte frame, as much as the server spends on a frame at a
    thousand readers, which is why `connect_readers` has only a sample of its
    readers count. The HTTP/1.1 chunked encoding needs no decoding for either:
    a chunk-size line ends with a line end, so each event still has exactly
    one `\\nid: `, and the last bytes hold the last frame.

    Sends `Connection: close`, so the end of the response is the end of the
    connection. With `lags`, appends one delivery lag per read: the receive
    time (`time.time()`) minus the first `ts` in the read, the oldest event in
    it (a sample, not one lag per event).
    """

    def __init__(
        self,
        host: str,
        path: str,
        *,
        count: bool = True,
        lags: array[float] | None = None,
        marker: bytes = _ID_LINE,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        self.count = count
        self.lags = lags
        self.marker = marker
        self.edge = len(marker) - 1  # bytes of a read kept to find a marker cut by the next
        self.started: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.events = 0
        self.reads = 0
        self.tail = b""
        self.error: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.lags is not None:
            self._stamp(data)
        self.reads += 1
        if not self.started.done():
            if not data.startswith(b"HTTP/1.1 200"):
                self.error = data[:200].decode(errors="replace")
            self.started.set_result(None)
        if self.count:
            marker, edge = self.marker, self.edge
            self.events += data.count(marker) + (self.tail[-edge:] + data[:edge]).count(marker)
        self.tail = data[-_TAIL:] if len(data) >= _TAIL else (self.tail + data)[-_TAIL:]

    def _stamp(self, data: bytes) -> None:
        now = time.time()
        start = data.find(_TS)
        if start >= 0:
            end = data.find(b",", start)
            if end > 0:
                assert self.lags is not None
                self.lags.append(now - float(data[start + len(_TS) : end]))

    def last_id(self) -> str | None:
        """The id of the last frame received (`"12"`, or `"12.3"` in a UI protocol), or None."""
        at = self.tail.rfind(_ID_LINE)
        if at < 0:
            return None
        return self.tail[at + len(_ID_LINE) :].partition(b"\n")[0].decode(errors="replace")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.started.done():
            self.started.set_result(None)
        if not self.done.done():
            self.done.set_result(None)


async def connect_readers(
    port: int,
    path: str,
    count: int,
    lags: array[float] | None = None,
    marker: bytes = _ID_LINE,
) -> list[SseCounter]:
    """`count` readers of `path`, each connected and past the response's first bytes.

    Reader 0, `COUNT_EVERY`, 2 * `COUNT_EVERY`, ... count every frame (every
    line starting with `marker`).
    """
    loop = asyncio.get_running_loop()
    host = f"127.0.0.1:{port}"

    async def one(i: int) -> SseCounter:
        _, reader = await loop.create_connection(
            lambda: SseCounter(host, path, count=i % COUNT_EVERY == 0, lags=lags, marker=marker),
            "127.0.0.1",
            port,
        )
        await reader.started
        return reader

    readers: list[SseCounter] = []
    for start in range(0, count, 200):  # in batches, to stay within the listen backlog
        readers += await asyncio.gather(*(one(i) for i in range(start, min(start + 200, count))))
    for r in readers:
        if r.error:
            raise SystemExit(f"reader failed: {r.error}")
    return readers


async def wait_readers(readers: list[SseCounter], events: int, last: str | None = None) -> None:
    """Wait until every reader's response ended; check that each got the whole stream.

    Every reader: the last frame has id `last` (default `events - 1`); a
    counting reader: it got `events` frames.
    """
    await asyncio.gather(*(r.done for r in readers))
    want = str(events - 1) if last is None else last
    for r in readers:
        if r.error or r.last_id() != want or (r.count and r.events != events):
            got = f"{r.events} frames, " if r.count else ""
            raise SystemExit(
                f"reader got {got}the last with id {r.last_id()}; expected {events} frames,"
                f" the last with id {want}; {r.error or 'no error'}"
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
