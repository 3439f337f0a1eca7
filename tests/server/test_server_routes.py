"""The server's routes under a real uvicorn: runs, SSE, WebSocket, cancel, profiles, CORS."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
import websockets

import runstream as rs
from _support.invariants import check_invariants
from _support.server import (
    SSEParser,
    emitter,
    event_of,
    frames_of,
    is_terminal,
    live,
    read_sse,
    read_ws,
    start,
    ticks,
    until,
    wait_status,
    ws_url,
)
from runstream.codec import loads
from runstream.server import Limits, MemoryBus, create_app

pytestmark = pytest.mark.anyio


def chat_graph() -> rs.CompiledGraph:
    """A graph that emits one event of most kinds, including a child run."""

    async def child_node(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        await ctx.reply("from the child")
        return {"found": "yes"}

    child = rs.StateGraph(name="helper")
    child.add_node("work", child_node)
    child.add_edge(rs.START, "work")
    helper = child.compile()

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        await ctx.think("let me look")
        await ctx.usage("m-1", 3, 4)
        async with ctx.tool("search", {"q": "secret query"}) as call:
            await call.update(progress=0.5, data={"partial": "secret"})
            call.result = ["secret result"]
        await ctx.call_agent(helper, {"task": "x"})
        await ctx.reply("hello")
        await ctx.custom("note", 1)
        return {"answer": "hello"}

    g = rs.StateGraph(name="chat")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    return g.compile()


def failing_graph() -> rs.CompiledGraph:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        for i in range(3):
            await ctx.custom("tick", i)
        raise ValueError("boom")

    g = rs.StateGraph(name="failing")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    return g.compile()


# --- full runs -------------------------------------------------------------------


async def test_a_run_streams_every_event_over_sse_history_then_live() -> None:
    gate = anyio.Event()
    app = create_app({"emitter": emitter(20, gate=gate, gate_at=10)})
    async with live(app) as client:
        response = await client.post(
            "/runs", json={"graph": "emitter", "input": {}, "thread_id": "t-1"}
        )
        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"run_id", "thread_id", "events_url"}
        run_id = body["run_id"]
        assert body["thread_id"] == "t-1"
        url = httpx.URL(body["events_url"])
        assert url.path == f"/runs/{run_id}/events"
        assert (url.host, url.port) == (client.base_url.host, client.base_url.port)

        status = (await client.get(f"/runs/{run_id}")).json()
        assert status["status"] == "running"
        assert (status["run_id"], status["graph"]) == (run_id, "emitter")

        events: list[rs.Event] = []
        async with client.stream("GET", body["events_url"]) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-cache"
            async for frame in frames_of(stream):
                events.append(event_of(frame))
                if len(ticks(events)) == 10:
                    gate.set()  # the rest arrives live on the same stream
        # the stream ended by itself after the terminal event
        check_invariants(events)
        assert ticks(events) == list(range(20))
        assert is_terminal(events[-1], rs.Phase.COMPLETED)
        assert {(e.run_id, e.thread_id) for e in events} == {(run_id, "t-1")}

        assert await wait_status(client, run_id) == "completed"
        final = (await client.get(f"/runs/{run_id}")).json()
        assert final == {
            "run_id": run_id,
            "graph": "emitter",
            "status": "completed",
            "events": len(events),
            "thread_id": "t-1",
            "oldest": 0,
        }
        # a finished run replays in full
        _, again = await read_sse(client, body["events_url"])
        assert again == events


async def test_a_failed_run_is_failed_and_its_stream_ends_with_workflow_failed() -> None:
    app = create_app({"failing": failing_graph()})
    async with live(app) as client:
        run_id = await start(client, "failing")
        _, events = await read_sse(client, f"/runs/{run_id}/events")
        assert await wait_status(client, run_id) == "failed"
        check_invariants(events)
        assert ticks(events) == [0, 1, 2]
        last = events[-1]
        assert is_terminal(last, rs.Phase.FAILED)
        assert isinstance(last, rs.Workflow)
        assert last.error is not None
        assert last.error.type == "ValueError"


async def test_an_idle_stream_sends_keep_alive_comments() -> None:
    gate = anyio.Event()
    app = create_app({"emitter": emitter(3, gate=gate, gate_at=1)}, limits=Limits(heartbeat=0.02))
    async with live(app) as client:
        run_id = await start(client, "emitter")
        parser = SSEParser()
        events: list[rs.Event] = []
        async with client.stream("GET", f"/runs/{run_id}/events") as stream:
            async for line in stream.aiter_lines():
                frame = parser.feed(line)
                if frame is not None:
                    events.append(event_of(frame))
                if parser.comments >= 2:
                    gate.set()
        assert parser.comments >= 2
        check_invariants(events)
        assert ticks(events) == [0, 1, 2]


# --- POST /runs/stream -----------------------------------------------------------


async def test_post_runs_stream_streams_a_new_run_in_one_response() -> None:
    app = create_app({"emitter": emitter(30)})
    async with live(app) as client:
        events: list[rs.Event] = []
        async with client.stream("POST", "/runs/stream", json={"graph": "emitter"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-cache"
            run_id = stream.headers["x-run-id"]
            events = [event_of(f) async for f in frames_of(stream)]
        check_invariants(events)
        assert ticks(events) == list(range(30))
        assert {e.run_id for e in events} == {run_id}
        assert await wait_status(client, run_id) == "completed"


async def test_closing_a_post_runs_stream_response_cancels_its_run() -> None:
    gate = anyio.Event()  # never set: the run would wait forever
    app = create_app({"emitter": emitter(10, gate=gate, gate_at=5)})
    async with live(app) as client:
        seen: list[rs.Event] = []
        async with client.stream("POST", "/runs/stream", json={"graph": "emitter"}) as stream:
            run_id = stream.headers["x-run-id"]
            async for frame in frames_of(stream):
                seen.append(event_of(frame))
                if len(ticks(seen)) == 5:
                    break  # and leave: the connection closes
        assert await wait_status(client, run_id) == "canceled"
        _, events = await read_sse(client, f"/runs/{run_id}/events")
        check_invariants(events)
        assert events[: len(seen)] == seen
        assert ticks(events) == [0, 1, 2, 3, 4]
        assert is_terminal(events[-1], rs.Phase.CANCELED)


async def test_closing_an_sse_reader_of_a_post_runs_run_never_affects_it() -> None:
    gate = anyio.Event()
    bus = MemoryBus()
    app = create_app({"emitter": emitter(10, gate=gate, gate_at=5)}, bus=bus)
    async with live(app) as client:
        run_id = await start(client, "emitter")
        seen: list[rs.Event] = []
        async with client.stream("GET", f"/runs/{run_id}/events") as stream:
            async for frame in frames_of(stream):
                seen.append(event_of(frame))
                if len(ticks(seen)) == 5:
                    break
        await until(lambda: bus.readers(run_id) == 0)  # the server noticed the disconnect
        assert (await client.get(f"/runs/{run_id}")).json()["status"] == "running"
        gate.set()
        assert await wait_status(client, run_id) == "completed"
        _, events = await read_sse(client, f"/runs/{run_id}/events")
        check_invariants(events)
        assert ticks(events) == list(range(10))
        assert is_terminal(events[-1], rs.Phase.COMPLETED)


# --- cancel ----------------------------------------------------------------------


async def test_cancel_ends_a_run_with_workflow_canceled() -> None:
    gate = anyio.Event()  # never set
    app = create_app({"emitter": emitter(10, gate=gate, gate_at=3)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        async with client.stream("GET", f"/runs/{run_id}/events") as stream:
            events: list[rs.Event] = []
            async for frame in frames_of(stream):
                events.append(event_of(frame))
                if len(ticks(events)) == 3:
                    response = await client.post(f"/runs/{run_id}/cancel")
                    assert response.status_code == 202
                    assert response.json()["run_id"] == run_id
        # the open stream ended by itself with the terminal event
        check_invariants(events)
        assert ticks(events) == [0, 1, 2]
        assert is_terminal(events[-1], rs.Phase.CANCELED)
        assert await wait_status(client, run_id) == "canceled"


async def test_cancelling_a_finished_run_is_accepted_and_changes_nothing() -> None:
    app = create_app({"emitter": emitter(3)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        assert await wait_status(client, run_id) == "completed"
        response = await client.post(f"/runs/{run_id}/cancel")
        assert response.status_code == 202
        assert await wait_status(client, run_id) == "completed"


# --- profiles --------------------------------------------------------------------


def check_user_chat(shown: list[rs.Event], full: list[rs.Event]) -> None:
    by_seq = {e.seq: e for e in full}
    seqs = [e.seq for e in shown]
    assert seqs == sorted(set(seqs)), "a profile keeps the order and repeats nothing"
    hidden = (rs.PlannerThought, rs.Usage, rs.StateUpdate, rs.ToolUpdate, rs.Custom)
    assert not [e for e in shown if isinstance(e, hidden)]
    for e in shown:
        original = by_seq[e.seq]
        assert type(e) is type(original)
        assert e.run_id == original.run_id
        if isinstance(e, rs.ToolStart):
            assert e.payload == {}
        elif isinstance(e, rs.ToolEnd):
            assert e.result is None
        else:
            assert e == original
    workflows = [e for e in shown if isinstance(e, rs.Workflow)]
    assert workflows == [shown[-1]]
    assert is_terminal(shown[-1], rs.Phase.COMPLETED)
    replies = [e.text for e in shown if isinstance(e, rs.AssistantReply)]
    assert replies == ["from the child", "hello"]
    assert [e.tool_name for e in shown if isinstance(e, rs.ToolStart)] == ["search", "helper"]
    assert any(isinstance(e, rs.AgentRunStarted) for e in shown)


async def test_profile_user_chat_over_sse_and_websocket() -> None:
    app = create_app({"chat": chat_graph()})
    async with live(app) as client:
        run_id = await start(client, "chat")
        _, full = await read_sse(client, f"/runs/{run_id}/events")
        check_invariants(full)
        # the full stream has what the profile must hide
        kinds = {type(e) for e in full}
        assert {rs.PlannerThought, rs.Usage, rs.StateUpdate, rs.ToolUpdate} <= kinds

        response, shown = await read_sse(
            client, f"/runs/{run_id}/events", params={"profile": "user_chat"}
        )
        assert response.status_code == 200
        check_user_chat(shown, full)  # read_sse checked each frame's id == seq

        over_ws, code = await read_ws(ws_url(client, f"/runs/{run_id}/ws") + "?profile=user_chat")
        assert code == 1000
        assert over_ws == shown

        _, debug = await read_sse(
            client, f"/runs/{run_id}/events", params={"profile": "agent_debug"}
        )
        assert debug == full
        _, metrics = await read_sse(client, f"/runs/{run_id}/events", params={"profile": "metrics"})
        assert metrics == [e for e in full if isinstance(e, rs.Usage | rs.Workflow)]

        # POST /runs/stream applies it too
        route = "/runs/stream?profile=user_chat"
        async with client.stream("POST", route, json={"graph": "chat"}) as stream:
            streamed_id = stream.headers["x-run-id"]
            streamed = [event_of(f) async for f in frames_of(stream)]
        _, streamed_full = await read_sse(client, f"/runs/{streamed_id}/events")
        check_user_chat(streamed, streamed_full)


async def test_an_unknown_profile_is_422() -> None:
    app = create_app({"emitter": emitter(3)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        response = await client.get(f"/runs/{run_id}/events", params={"profile": "nope"})
        assert response.status_code == 422
        assert "nope" in response.json()["detail"]
        response = await client.post("/runs/stream?profile=nope", json={"graph": "emitter"})
        assert response.status_code == 422
        assert "nope" in response.json()["detail"]


# --- WebSocket -------------------------------------------------------------------


async def test_websocket_sends_one_text_frame_per_event_and_closes_with_1000() -> None:
    gate = anyio.Event()
    app = create_app({"emitter": emitter(20, gate=gate, gate_at=10)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        url = ws_url(client, f"/runs/{run_id}/ws")
        events: list[rs.Event] = []
        async with websockets.connect(url) as ws:
            async for message in ws:
                assert isinstance(message, str)
                events.append(loads(message))
                if len(ticks(events)) == 10:
                    gate.set()  # the rest arrives live
            assert ws.close_code == 1000
        check_invariants(events)
        assert ticks(events) == list(range(20))
        assert is_terminal(events[-1], rs.Phase.COMPLETED)
        _, over_sse = await read_sse(client, f"/runs/{run_id}/events")
        assert events == over_sse


async def test_a_websocket_client_leaving_early_never_affects_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = anyio.Event()
    app = create_app({"emitter": emitter(200, every=10, delay=0.001, gate=gate, gate_at=5)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        async with websockets.connect(ws_url(client, f"/runs/{run_id}/ws")) as ws:
            for _ in range(5):
                await ws.recv()
        gate.set()  # the server now sends to a closed socket
        assert await wait_status(client, run_id) == "completed"
        _, events = await read_sse(client, f"/runs/{run_id}/events")
        check_invariants(events)
        assert ticks(events) == list(range(200))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_websocket_after_resumes_after_that_seq() -> None:
    app = create_app({"emitter": emitter(40)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        assert await wait_status(client, run_id) == "completed"
        full, _ = await read_ws(ws_url(client, f"/runs/{run_id}/ws"))
        check_invariants(full)
        for after in (-1, 0, 7, len(full) - 2, len(full) - 1):
            tail, code = await read_ws(ws_url(client, f"/runs/{run_id}/ws") + f"?after={after}")
            assert code == 1000
            assert tail == full[after + 1 :], after


# --- CORS ------------------------------------------------------------------------


async def test_cors_is_off_by_default() -> None:
    app = create_app({"emitter": emitter(1)})
    async with live(app) as client:
        origin = {"Origin": "http://example.test"}
        response = await client.post("/runs", json={"graph": "emitter"}, headers=origin)
        assert response.status_code == 201
        assert "access-control-allow-origin" not in response.headers
        preflight = await client.options(
            "/runs",
            headers={**origin, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        await wait_status(client, response.json()["run_id"])


async def test_cors_allows_only_the_configured_origins() -> None:
    app = create_app({"emitter": emitter(1)}, cors_origins=["http://example.test"])
    async with live(app) as client:
        origin = {"Origin": "http://example.test"}
        response = await client.post("/runs", json={"graph": "emitter"}, headers=origin)
        assert response.status_code == 201
        assert response.headers["access-control-allow-origin"] == "http://example.test"
        run_id = response.json()["run_id"]
        assert "x-run-id" in response.headers.get("access-control-expose-headers", "").lower()

        preflight = await client.options(
            "/runs",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://example.test"

        other = await client.get(f"/runs/{run_id}", headers={"Origin": "http://evil.test"})
        assert other.status_code == 200
        assert "access-control-allow-origin" not in other.headers
        await wait_status(client, run_id)
