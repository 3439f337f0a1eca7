"""Every error path of the server, each a JSON `{"detail": ...}` with its status code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypedDict

import anyio
import httpx
import pytest

import runstream as rs
from _support.server import (
    emitter,
    live,
    parse_sse,
    read_sse,
    start,
    wait_status,
    ws_refused,
    ws_url,
)
from runstream.server import Limits, MemoryBus, create_app

pytestmark = pytest.mark.anyio


def detail(response: httpx.Response, status: int) -> str:
    """Assert the status and the error body; return the detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail"}
    text: str = body["detail"]
    assert isinstance(text, str)
    assert text
    return text


class Question(TypedDict, total=False):
    question: str
    answer: str


def typed_graph() -> rs.CompiledGraph:
    async def answer(state: Question) -> dict[str, Any]:
        return {"answer": state.get("question", "")}

    g = rs.StateGraph(Question, name="typed")
    g.add_node("answer", answer)
    g.add_edge(rs.START, "answer")
    return g.compile()


async def test_an_unknown_graph_is_404_listing_the_graphs() -> None:
    app = create_app({"alpha": emitter(1), "beta": emitter(1)})
    async with live(app) as client:
        for route in ("/runs", "/runs/stream"):
            text = detail(await client.post(route, json={"graph": "gamma"}), 404)
            assert "gamma" in text
            assert "alpha" in text
            assert "beta" in text


async def test_an_unknown_run_is_404_on_every_http_route() -> None:
    app = create_app({"emitter": emitter(1)})
    async with live(app) as client:
        missing = "00000000-0000-4000-8000-000000000000"
        assert missing in detail(await client.get(f"/runs/{missing}"), 404)
        assert missing in detail(await client.get(f"/runs/{missing}/events"), 404)
        assert missing in detail(await client.post(f"/runs/{missing}/cancel"), 404)


async def test_an_unknown_run_is_404_on_the_websocket() -> None:
    app = create_app({"emitter": emitter(1)})
    async with live(app) as client:
        url = ws_url(client, "/runs/00000000-0000-4000-8000-000000000000/ws")
        await ws_refused(url, 404)


async def test_malformed_bodies_are_422() -> None:
    app = create_app({"emitter": emitter(1)})
    async with live(app) as client:
        json_type = {"content-type": "application/json"}
        for route in ("/runs", "/runs/stream"):
            assert "JSON" in detail(
                await client.post(route, content=b'{"graph": ', headers=json_type), 422
            )
            assert "JSON" in detail(
                await client.post(route, content=b"\xff\xfe", headers=json_type), 422
            )
            assert "object" in detail(await client.post(route, json=["emitter"]), 422)
            assert "object" in detail(await client.post(route, json="emitter"), 422)
            assert "object" in detail(await client.post(route), 422)  # no body at all


async def test_a_missing_or_invalid_field_is_422_naming_it() -> None:
    app = create_app({"emitter": emitter(1)})
    async with live(app) as client:
        for route in ("/runs", "/runs/stream"):
            assert "'graph'" in detail(await client.post(route, json={"input": {}}), 422)
            assert "'graph'" in detail(await client.post(route, json={"graph": 5}), 422)
            assert "'graph'" in detail(await client.post(route, json={"graph": None}), 422)
            bad_thread = {"graph": "emitter", "thread_id": 7}
            assert "'thread_id'" in detail(await client.post(route, json=bad_thread), 422)


async def test_input_the_graph_rejects_is_422_naming_the_field() -> None:
    app = create_app({"typed": typed_graph()})
    async with live(app) as client:
        for route in ("/runs", "/runs/stream"):
            unknown_key = {"graph": "typed", "input": {"question": "q", "colour": "red"}}
            text = detail(await client.post(route, json=unknown_key), 422)
            assert "'input'" in text
            assert "colour" in text
            not_a_dict = {"graph": "typed", "input": ["q"]}
            assert "'input'" in detail(await client.post(route, json=not_a_dict), 422)
        # a good input still runs
        run_id = await start(client, "typed", input={"question": "q"})
        assert await wait_status(client, run_id) == "completed"


async def test_a_body_over_the_limit_is_413() -> None:
    app = create_app({"emitter": emitter(1)}, limits=Limits(max_body_bytes=200))
    async with live(app) as client:
        big = {"graph": "emitter", "input": {}, "thread_id": "x" * 300}

        async def chunked() -> AsyncIterator[bytes]:
            yield b'{"graph": "emitter", "thread_id": "'
            for _ in range(30):
                yield b"x" * 10
            yield b'"}'

        for route in ("/runs", "/runs/stream"):
            # declared with Content-Length
            assert "200" in detail(await client.post(route, json=big), 413)
            # streamed without a length
            response = await client.post(
                route, content=chunked(), headers={"content-type": "application/json"}
            )
            assert "transfer-encoding" in response.request.headers
            assert "200" in detail(response, 413)
        # just under the limit is fine
        run_id = await start(client, "emitter", thread_id="x" * 100)
        assert await wait_status(client, run_id) == "completed"


async def test_too_many_running_runs_is_429_with_retry_after() -> None:
    gate = anyio.Event()
    app = create_app(
        {"emitter": emitter(3, gate=gate, gate_at=1)},
        limits=Limits(max_running=2, retry_after=7),
    )
    async with live(app) as client:
        first = await start(client, "emitter")
        second = await start(client, "emitter")
        for route in ("/runs", "/runs/stream"):
            response = await client.post(route, json={"graph": "emitter"})
            assert "2" in detail(response, 429)
            assert response.headers["retry-after"] == "7"
        gate.set()
        assert await wait_status(client, first) == "completed"
        assert await wait_status(client, second) == "completed"
        # once runs end, new ones are accepted again
        with anyio.fail_after(5):
            while (response := await client.post("/runs", json={"graph": "emitter"})).status_code:
                if response.status_code != 429:
                    break
                await anyio.sleep(0.01)
        assert response.status_code == 201
        assert await wait_status(client, response.json()["run_id"]) == "completed"


async def test_a_bad_resume_position_is_422() -> None:
    app = create_app({"emitter": emitter(1)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        url = f"/runs/{run_id}/events"
        assert "abc" in detail(await client.get(url, params={"after": "abc"}), 422)
        assert "abc" in detail(await client.get(url, headers={"Last-Event-ID": "abc"}), 422)
        assert "-2" in detail(await client.get(url, params={"after": "-2"}), 422)
        await wait_status(client, run_id)


async def test_a_bad_resume_position_or_profile_is_422_on_the_websocket() -> None:
    app = create_app({"emitter": emitter(1)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        url = ws_url(client, f"/runs/{run_id}/ws")
        await ws_refused(url + "?after=abc", 422)
        await ws_refused(url + "?profile=nope", 422)
        await wait_status(client, run_id)


async def test_evicted_history_is_410() -> None:
    app = create_app({"emitter": emitter(497)}, bus=MemoryBus(max_events=50))
    async with live(app) as client:
        run_id = await start(client, "emitter")
        assert await wait_status(client, run_id) == "completed"
        url = f"/runs/{run_id}/events"
        # the recent events are still there
        response, tail = await read_sse(client, url, params={"after": 489})
        assert response.status_code == 200
        assert [e.seq for e in tail] == list(range(490, 500))
        # the old ones are not: say so rather than skip them
        assert run_id in detail(await client.get(url, params={"after": "0"}), 410)
        assert run_id in detail(await client.get(url), 410)


async def test_evicted_history_refuses_the_websocket_with_410() -> None:
    app = create_app({"emitter": emitter(497)}, bus=MemoryBus(max_events=50))
    async with live(app) as client:
        run_id = await start(client, "emitter")
        assert await wait_status(client, run_id) == "completed"
        await ws_refused(ws_url(client, f"/runs/{run_id}/ws") + "?after=0", 410)


async def test_a_reader_overtaken_by_eviction_ends_cleanly_and_its_resume_is_410() -> None:
    # Each event is about 1 kB, so the run outgrows the socket buffers while the
    # reader is stalled; only the last 50 events are kept.
    gate = anyio.Event()
    app = create_app(
        {"emitter": emitter(10_000, pad=1000, gate=gate, gate_at=10)},
        bus=MemoryBus(max_events=50),
    )
    async with live(app) as client:
        run_id = await start(client, "emitter")
        url = f"/runs/{run_id}/events"
        received: list[bytes] = []
        async with client.stream("GET", url) as stream:
            chunks = stream.aiter_bytes()
            received.append(await anext(chunks))
            gate.set()  # the run goes on while this reader reads nothing
            assert await wait_status(client, run_id) == "completed"
            # the server must end the stream it cannot continue, not abort it
            received += [chunk async for chunk in chunks]
        frames, _ = parse_sse(b"".join(received).decode())
        seqs = [int(f.id or "") for f in frames]
        assert seqs == list(range(len(seqs))), "what arrived is gap-free"
        assert 0 < len(seqs) < 10_003
        response = await client.get(url, headers={"Last-Event-ID": str(seqs[-1])})
        assert run_id in detail(response, 410)
