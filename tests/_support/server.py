"""Helpers shared by the server tests: graphs, a live server, SSE and WebSocket readers.

This module holds no tests; it is named `test_server_*` only so that it sits
with them. The SSE parser is written from the spec on purpose (not taken from
the code under test): frames end at a blank line, `:` lines are comments, and
a frame without `data` is not an event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import websockets

import runstream as rs
from _support.invariants import settle
from _support.serving import serving
from runstream.codec import loads


def emitter(
    n: int,
    *,
    name: str = "emitter",
    every: int = 0,
    delay: float = 0.0,
    gate: anyio.Event | None = None,
    gate_at: int = 0,
    pad: int = 0,
) -> rs.CompiledGraph:
    """A graph that emits `n` `Custom("tick", i)` events.

    It sleeps `delay` seconds after every `every` events, and when `gate` is
    given it waits for it before emitting event number `gate_at`. With `pad`,
    the data is `[i, "x" * pad]` instead of `i`.
    """

    async def emit(state: dict[str, Any], ctx: rs.RunContext) -> None:
        for i in range(n):
            if gate is not None and i == gate_at:
                await gate.wait()
            await ctx.custom("tick", [i, "x" * pad] if pad else i)
            if every and (i + 1) % every == 0:
                await anyio.sleep(delay)

    g = rs.StateGraph(name=name)
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


@asynccontextmanager
async def live(app: Any, **client_options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Serve `app` on loopback and yield an httpx client for it.

    After the server has stopped, asserts that it logged no error (such as an
    exception in the app) and that no task was left behind.
    """
    errors = _ErrorLog()
    logger = logging.getLogger("uvicorn.error")
    options: dict[str, Any] = {"timeout": 10.0, **client_options}
    try:
        async with serving(app) as url:
            logger.addHandler(errors)  # only now: uvicorn resets its loggers on start
            async with httpx.AsyncClient(base_url=url, **options) as client:
                yield client
    finally:
        logger.removeHandler(errors)
    assert errors.messages == [], "the server logged errors"
    await settle()


class _ErrorLog(logging.Handler):
    # uvicorn's websockets-sansio protocol logs this after every WebSocket
    # denial response, which it sends correctly (Kludex/uvicorn#3138).
    SPURIOUS = frozenset({"ASGI callable returned without completing handshake."})

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.SPURIOUS:
            self.messages.append(message)


@dataclass(frozen=True)
class Frame:
    """One dispatched SSE event."""

    id: str | None
    event: str | None
    data: str


class SSEParser:
    """Turns SSE lines (without their line ends) into frames."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event: str | None = None
        self._data: list[str] = []
        self.comments = 0

    def feed(self, line: str) -> Frame | None:
        if line == "":
            frame = None
            if self._data:
                frame = Frame(self._id, self._event, "\n".join(self._data))
            self._event, self._data = None, []
            return frame
        if line.startswith(":"):
            self.comments += 1
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        # "retry" and unknown fields are ignored, as a browser does
        return None


async def frames_of(response: httpx.Response) -> AsyncIterator[Frame]:
    """The frames of a streaming SSE response, as they arrive."""
    parser = SSEParser()
    async for line in response.aiter_lines():
        frame = parser.feed(line)
        if frame is not None:
            yield frame


def parse_sse(text: str) -> tuple[list[Frame], int]:
    """The frames of a complete SSE body, and how many comment lines it had."""
    parser = SSEParser()
    frames = [f for line in text.splitlines() if (f := parser.feed(line)) is not None]
    return frames, parser.comments


def event_of(frame: Frame) -> rs.Event:
    """Decode a frame and check that its `id` and `event` fields match the event."""
    event = loads(frame.data)
    assert frame.id == str(event.seq), (frame.id, event.seq)
    assert frame.event == event.type, (frame.event, event.type)
    return event


async def read_sse(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> tuple[httpx.Response, list[rs.Event]]:
    """Read a whole SSE stream (it must end by itself) and decode its events."""
    async with client.stream("GET", url, headers=headers, params=params) as response:
        if response.status_code != 200:
            await response.aread()
            return response, []
        events = [event_of(f) async for f in frames_of(response)]
    return response, events


async def read_frames(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> tuple[httpx.Response, list[Frame]]:
    """Read a whole SSE stream (it must end by itself) as frames, without decoding."""
    response = await client.get(url, headers=headers, params=params)
    if response.status_code != 200:
        return response, []
    frames, _ = parse_sse(response.text)
    return response, frames


def ws_url(client: httpx.AsyncClient, path: str) -> str:
    return str(client.base_url.copy_with(scheme="ws", path=path))


async def read_ws(
    url: str, headers: Mapping[str, str] | None = None
) -> tuple[list[rs.Event], int | None]:
    """Every text frame of a WebSocket, decoded, and the code it closed with."""
    events: list[rs.Event] = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        async for message in ws:
            assert isinstance(message, str), "events travel as text frames"
            events.append(loads(message))
        code = ws.close_code
    return events, code


async def ws_refused(url: str, status: int, headers: Mapping[str, str] | None = None) -> None:
    """Assert that the WebSocket handshake is refused with HTTP `status`.

    Refused with an HTTP response, it must carry the JSON `{"detail": ...}`.
    A server may instead accept and close at once with `4000 + status`.
    """
    try:
        async with websockets.connect(url, additional_headers=headers) as ws:
            try:
                async for _ in ws:
                    raise AssertionError("a refused WebSocket must not send events")
            except websockets.ConnectionClosed:
                pass
            code = ws.close_code
    except websockets.InvalidStatus as exc:
        refusal = exc.response
    else:
        assert code == 4000 + status, f"accepted, then closed with {code}"
        return
    assert refusal.status_code == status
    # the same JSON error as the HTTP routes
    assert refusal.headers.get("content-type") == "application/json"
    assert set(json.loads(bytes(refusal.body or b""))) == {"detail"}


async def start(
    client: httpx.AsyncClient,
    graph: str,
    *,
    headers: Mapping[str, str] | None = None,
    **body: Any,
) -> str:
    """POST /runs and return the run id."""
    response = await client.post("/runs", json={"graph": graph, **body}, headers=headers)
    assert response.status_code == 201, response.text
    run_id: str = response.json()["run_id"]
    return run_id


async def wait_status(
    client: httpx.AsyncClient,
    run_id: str,
    *,
    headers: Mapping[str, str] | None = None,
    poll: float = 0.005,
) -> str:
    """Poll GET /runs/{id} until the run is no longer running; its final status."""
    with anyio.fail_after(10):
        while True:
            response = await client.get(f"/runs/{run_id}", headers=headers)
            assert response.status_code == 200, response.text
            status: str = response.json()["status"]
            if status != "running":
                return status
            await anyio.sleep(poll)


def ticks(events: list[rs.Event]) -> list[Any]:
    """The data of the `Custom` events."""
    return [e.data for e in events if isinstance(e, rs.Custom)]


def is_terminal(event: rs.Event, phase: rs.Phase) -> bool:
    return isinstance(event, rs.Workflow) and event.phase is phase and event.parent_run_id is None


async def until(predicate: Callable[[], bool], turns: int = 2000) -> None:
    """Wait (bounded) for a state of the in-process server that no event announces.

    For what only the server's own loop changes, such as its readers noticing
    a disconnect (`MemoryBus.readers`) or its tasks ending: checked every
    millisecond, failing after `turns` checks.
    """
    for _ in range(turns):
        if predicate():
            return
        await anyio.sleep(0.001)
    raise AssertionError("the condition never held")
