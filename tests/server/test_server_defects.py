"""Defects found by outside testing of the server, each pinned by a test.

All over a real uvicorn on loopback (`live`), which also asserts that the
server logged no error and left no task behind.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import anyio
import httpx
import pytest
import websockets

import runstream as rs
from _support.server import emitter, live, start, until, wait_status, ws_url
from runstream.server import Limits, MemoryBus, create_app, stop_runs

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def counting(n: int = 1) -> tuple[rs.CompiledGraph, list[object]]:
    """A graph that records every run it starts, then emits `n` ticks."""
    started: list[object] = []

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        started.append(state.get("x"))
        for i in range(n):
            await ctx.custom("tick", i)

    g = rs.StateGraph(name="counting")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    return g.compile(), started


# --- 3. deep JSON ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/runs", "/runs/stream"])
@pytest.mark.parametrize("where", ["input", "body"])
async def test_deeply_nested_json_is_422_and_starts_nothing(path: str, where: str) -> None:
    app, started = counting()
    deep = "[" * 100_000 + "]" * 100_000
    if where == "input":
        body = '{"graph": "counting", "input": ' + deep + "}"
    else:
        body = deep
    async with live(create_app({"counting": app})) as client:
        response = await client.post(path, content=body)
        assert response.status_code == 422, response.text
        assert "nested too deeply" in response.json()["detail"]
    assert started == []


# --- 4. lone surrogates ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"graph": "counting", "input": {}, "thread_id": "\\ud800"}',
        '{"graph": "counting", "input": {"x": ["ok", "a\\udfffb"]}}',
        '{"graph": "counting", "input": {"\\ud83d": 1}}',
    ],
    ids=["thread_id", "input-value", "input-key"],
)
async def test_a_lone_surrogate_is_422_before_any_run_starts(body: str) -> None:
    app, started = counting()
    bus = MemoryBus()
    async with live(create_app({"counting": app}, bus=bus)) as client:
        response = await client.post("/runs", content=body)
        assert response.status_code == 422, response.text
        assert "lone surrogate" in response.json()["detail"]
        # A well-formed pair is fine.
        ok = await start(client, "counting", input={"x": "\U0001f600"}, thread_id="t-\u00e9")
        assert await wait_status(client, ok) == "completed"
    assert started == ["\U0001f600"]  # only the good one ran


# --- 9. WebSocket clients vanishing from an idle run -----------------------------------


async def test_websocket_handlers_end_when_clients_vanish_from_an_idle_run() -> None:
    gate = anyio.Event()  # the run says nothing until the end of the test
    bus = MemoryBus()
    async with live(create_app({"emitter": emitter(3, gate=gate, gate_at=1)}, bus=bus)) as client:
        run_id = await start(client, "emitter")
        url = ws_url(client, f"/runs/{run_id}/ws")
        before = len(asyncio.all_tasks())
        clients = [await websockets.connect(url) for _ in range(20)]
        for ws in clients:
            await ws.recv()  # Workflow(started): every handler is reading the idle run
        await until(lambda: bus.readers(run_id) == 20)
        for ws in clients:
            ws.transport.abort()  # gone without a closing handshake
        await until(lambda: bus.readers(run_id) == 0)
        await until(lambda: len(asyncio.all_tasks()) <= before)
        assert (await client.get(f"/runs/{run_id}")).json()["status"] == "running"
        gate.set()
        assert await wait_status(client, run_id) == "completed"


# --- 10. a client leaving in the middle of its body ----------------------------------------


async def test_a_client_leaving_mid_body_is_not_a_server_error() -> None:
    app, started = counting()
    async with live(create_app({"counting": app})) as client:
        host, port = client.base_url.host, client.base_url.port
        assert port is not None
        with socket.create_connection((host, port)) as sock:
            sock.sendall(
                b"POST /runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n" + b'{"graph": "coun'
            )
        # The server is still well, and `live` asserts it logged no error.
        ok = await start(client, "counting")
        assert await wait_status(client, ok) == "completed"
    assert started == [None]


# --- 11. HEAD on a live event stream -------------------------------------------------------


async def test_head_on_a_live_event_stream_answers_headers_and_ends() -> None:
    gate = anyio.Event()
    async with live(create_app({"emitter": emitter(3, gate=gate, gate_at=1)})) as client:
        run_id = await start(client, "emitter")
        with anyio.fail_after(5):
            response = await client.head(f"/runs/{run_id}/events")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.content == b""
        with anyio.fail_after(5):
            missing = await client.head("/runs/nope/events")
        assert missing.status_code == 404
        gate.set()
        assert await wait_status(client, run_id) == "completed"


# --- 16. retry: travels with the first event --------------------------------------------


def blocks(raw: bytes) -> list[list[str]]:
    """The SSE blocks of a response body: lists of lines, split at blank lines."""
    return [block.split("\n") for block in raw.decode().split("\n\n") if block]


@pytest.mark.parametrize("profile", [None, "user_chat"])
async def test_retry_is_sent_with_the_first_event_never_alone(profile: str | None) -> None:
    app, _ = counting(3)
    async with live(create_app({"counting": app})) as client:
        run_id = await start(client, "counting")
        assert await wait_status(client, run_id) == "completed"
        params = {"profile": profile} if profile else {}
        response = await client.get(f"/runs/{run_id}/events", params=params)
        found = blocks(response.content)
        first = found[0]
        assert first[0] == "retry: 1000"
        assert any(line.startswith("data: {") for line in first), first
        assert all(not line.startswith("retry:") for block in found[1:] for line in block)
        # Every block is an event with data: none that a client would hand out empty.
        assert all(any(line.startswith("data: ") for line in block) for block in found)


async def test_retry_waits_for_the_first_event_after_keep_alives() -> None:
    gate = anyio.Event()
    limits = Limits(heartbeat=0.01)
    app = create_app({"emitter": emitter(2, gate=gate, gate_at=0)}, limits=limits)
    async with live(app) as client:
        run_id = await start(client, "emitter")
        raw = b""
        async with client.stream("GET", f"/runs/{run_id}/events", params={"after": 0}) as stream:
            async for chunk in stream.aiter_raw():
                raw += chunk
                if raw.count(b": keep-alive") >= 2 and not gate.is_set():
                    gate.set()
        found = blocks(raw)
        assert found[0] == [": keep-alive"]  # a comment block: no message for any client
        first_event = next(b for b in found if any(x.startswith("data: ") for x in b))
        assert first_event[0] == "retry: 1000"
        assert sum(line.startswith("retry:") for b in found for line in b) == 1


# --- 17. a run lost with a restart ----------------------------------------------------------


async def test_an_unknown_run_says_it_may_have_been_lost_with_a_restart() -> None:
    app, _ = counting()
    async with live(create_app({"counting": app})) as client:
        for response in (
            await client.get("/runs/gone"),
            await client.get("/runs/gone/events"),
            await client.post("/runs/gone/cancel"),
        ):
            assert response.status_code == 404
            detail = response.json()["detail"]
            assert detail.startswith("unknown run 'gone'")
            assert "may have been lost with a restart" in detail
            assert "in memory" in detail


async def test_stop_runs_refuses_what_create_app_did_not_make() -> None:
    with pytest.raises(TypeError, match="create_app"):
        await stop_runs(object())


async def test_every_json_error_is_json() -> None:
    async with live(create_app({})) as client:
        response = await client.post("/runs", content=b"[" * 5000)
        assert response.status_code == 422
        assert json.loads(response.content) == {"detail": response.json()["detail"]}
        assert isinstance(client, httpx.AsyncClient)
