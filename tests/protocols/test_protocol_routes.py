"""The protocol formats over HTTP: `?format=`, exact resume at any frame, and the
AG-UI and AI SDK routes, on a real server on loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import runstream as rs
from _support.server import live, parse_sse, start, wait_status
from runstream import ops
from runstream._demo import build_demo_agent
from runstream.server import create_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def location_agent() -> rs.CompiledGraph:
    """Calls the client's `get_location` tool, then answers from its result."""
    model = rs.ScriptedModel(
        [rs.Turn(text="Let me check.", tool_calls=[("get_location", {})]), "You are in Oslo."]
    )
    return rs.create_agent(model, name="assistant")


def graphs() -> dict[str, rs.CompiledGraph]:
    return {"demo": build_demo_agent(0.0), "assistant": location_agent()}


async def protocol_read(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, list[tuple[str, dict[str, Any] | str]]]:
    response = await client.get(url, headers=headers)
    frames, _ = parse_sse(response.text)
    out: list[tuple[str, dict[str, Any] | str]] = []
    for f in frames:
        if f.data == "[DONE]":  # no id of its own (an SSE id carries over)
            out.append(("", f.data))
        else:
            assert f.id is not None
            out.append((f.id, json.loads(f.data)))
    return response, out


@pytest.mark.parametrize("format", ["ag-ui", "ai-sdk"])
async def test_a_run_in_each_format_resumes_exactly_after_every_frame(format: str) -> None:
    app = build_demo_agent(0.0)
    expected = rs.MemorySink[rs.protocols.Frame]()
    async with live(create_app(graphs())) as client:
        run_id = await start(client, "demo", input="Weather?")
        assert await wait_status(client, run_id) == "completed"
        url = f"/runs/{run_id}/events?format={format}"
        response, whole = await protocol_read(client, url)
        assert response.status_code == 200
        if format == "ai-sdk":
            assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
            assert whole[-1] == ("", "[DONE]")
            whole = whole[:-1]
        # The same frames as the operator makes of a run of the same graph.
        pipe = ops.to_ag_ui() if format == "ag-ui" else ops.to_ai_sdk()
        await rs.drain(app.run("Weather?").pipe(pipe), expected)
        assert [d["type"] for _, d in whole] == [f.data["type"] for f in expected.items]  # type: ignore[index]
        ids = [frame_id for frame_id, _ in whole]
        assert len(set(ids)) == len(ids)
        for i, frame_id in enumerate(ids):
            _, rest = await protocol_read(client, url, {"Last-Event-ID": frame_id})
            tail = rest[:-1] if format == "ai-sdk" else rest
            assert tail == whole[i + 1 :], f"resume after {frame_id}"
        last = await client.get(url, headers={"Last-Event-ID": ids[-1]})
        assert last.status_code == 204


async def test_the_native_format_takes_a_frame_id_too() -> None:
    async with live(create_app(graphs())) as client:
        run_id = await start(client, "demo", input="Weather?")
        assert await wait_status(client, run_id) == "completed"
        response = await client.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": "5.2"})
        frames, _ = parse_sse(response.text)
        assert frames[0].id == "6"


async def test_bad_formats_and_frame_ids_are_refused_naming_them() -> None:
    async with live(create_app(graphs())) as client:
        run_id = await start(client, "demo", input="Weather?")
        response = await client.get(f"/runs/{run_id}/events?format=markdown")
        assert response.status_code == 422
        assert "runstream, ag-ui, ai-sdk" in response.json()["detail"]
        response = await client.post(
            "/runs/stream", json={"graph": "demo", "input": "hi", "format": "xml"}
        )
        assert response.status_code == 422
        assert "'xml'" in response.json()["detail"]
        response = await client.get(
            f"/runs/{run_id}/events?format=ag-ui", headers={"Last-Event-ID": "3.x"}
        )
        assert response.status_code == 422
        assert "frame id" in response.json()["detail"]


async def test_start_and_stream_in_a_protocol_format() -> None:
    async with live(create_app(graphs())) as client:
        response = await client.post(
            "/runs/stream", json={"graph": "demo", "input": "hi", "format": "ai-sdk"}
        )
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        frames, _ = parse_sse(response.text)
        assert json.loads(frames[0].data)["type"] == "start"
        assert frames[-1].data == "[DONE]"


def run_agent_input(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {
        "threadId": "thread-1",
        "runId": "run-1",
        "messages": messages,
        "tools": [
            {
                "name": "get_location",
                "description": "The user's location, from the browser",
                "parameters": {"type": "object", "properties": {}},
            }
        ],
        "context": [],
        "state": {},
        "forwardedProps": {},
    }
    body.update(extra)
    return body


def ag_ui_events(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    frames, _ = parse_sse(response.text)
    return [json.loads(f.data) for f in frames]


async def test_ag_ui_route_runs_a_client_side_tool_round_trip() -> None:
    user = {"id": "m1", "role": "user", "content": "Where am I?"}
    async with live(create_app(graphs())) as client:
        first = ag_ui_events(await client.post("/ag-ui/assistant", json=run_agent_input([user])))
        assert first[0]["type"] == "RUN_STARTED"
        assert first[0]["threadId"] == "thread-1"
        [call] = [e for e in first if e["type"] == "TOOL_CALL_START"]
        assert call["toolCallName"] == "get_location"
        assert first[-1]["outcome"] == {
            "type": "success",
            "pendingToolCallIds": [call["toolCallId"]],
        }
        said = "".join(e["delta"] for e in first if e["type"] == "TEXT_MESSAGE_CONTENT")
        history = [
            user,
            {
                "id": "m2",
                "role": "assistant",
                "content": said,
                "toolCalls": [
                    {
                        "id": call["toolCallId"],
                        "type": "function",
                        "function": {"name": "get_location", "arguments": "{}"},
                    }
                ],
            },
            {"id": "m3", "role": "tool", "toolCallId": call["toolCallId"], "content": "Oslo"},
        ]
        second = ag_ui_events(await client.post("/ag-ui/assistant", json=run_agent_input(history)))
        answer = "".join(e["delta"] for e in second if e["type"] == "TEXT_MESSAGE_CONTENT")
        assert answer == "You are in Oslo."
        assert second[-1]["outcome"] == {"type": "success"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"threadId": None}, "threadId"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"id": "m", "role": "robot", "content": "x"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    {
                        "id": "m",
                        "role": "assistant",
                        "toolCalls": [{"id": "c", "function": {"name": "f", "arguments": "{nope"}}],
                    }
                ]
            },
            "messages[0].toolCalls[0].function.arguments",
        ),
        ({"tools": [{"description": "no name"}]}, "tools[0].name"),
    ],
)
async def test_malformed_run_agent_input_is_422_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    body = run_agent_input([{"id": "m1", "role": "user", "content": "hi"}])
    body.update(change)
    async with live(create_app(graphs())) as client:
        response = await client.post("/ag-ui/assistant", json=body)
    assert response.status_code == 422
    assert f"field '{field}'" in response.json()["detail"]


async def test_unknown_graphs_are_404_on_both_routes() -> None:
    async with live(create_app(graphs())) as client:
        body = run_agent_input([{"id": "m1", "role": "user", "content": "hi"}])
        assert (await client.post("/ag-ui/nope", json=body)).status_code == 404
        chat = {"id": "c1", "messages": [], "trigger": "submit-message"}
        assert (await client.post("/ai-sdk/nope", json=chat)).status_code == 404


def chat_body(chat_id: str, text: str) -> dict[str, Any]:
    return {
        "id": chat_id,
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}],
        "trigger": "submit-message",
        "messageId": None,
    }


async def test_ai_sdk_chat_and_its_reconnect() -> None:
    async with live(create_app(graphs())) as client:
        resume = "/ai-sdk/demo/chat-1/stream"
        assert (await client.get(resume)).status_code == 204  # no stream yet
        response = await client.post("/ai-sdk/demo", json=chat_body("chat-1", "Weather?"))
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        whole, _ = parse_sse(response.text)
        assert whole[-1].data == "[DONE]"
        run_id = response.headers["x-run-id"]
        assert await wait_status(client, run_id) == "completed"
        # The run has ended: no active stream, unless the client asks from a frame.
        assert (await client.get(resume)).status_code == 204
        middle = whole[len(whole) // 2]
        again = await client.get(resume, headers={"Last-Event-ID": middle.id or ""})
        rest, _ = parse_sse(again.text)
        assert [f.data for f in rest] == [f.data for f in whole[len(whole) // 2 + 1 :]]


async def test_ai_sdk_turns_ui_messages_into_the_conversation() -> None:
    async with live(create_app(graphs())) as client:
        body = {
            "id": "chat-2",
            "trigger": "submit-message",
            "messages": [
                {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Where am I?"}]},
                {
                    "id": "a1",
                    "role": "assistant",
                    "parts": [
                        {"type": "step-start"},
                        {"type": "text", "text": "Let me check."},
                        {
                            "type": "tool-get_location",
                            "toolCallId": "c1",
                            "state": "output-available",
                            "input": {},
                            "output": "Oslo",
                        },
                    ],
                },
            ],
        }
        response = await client.post("/ai-sdk/assistant", json=body)
        frames, _ = parse_sse(response.text)
        text = "".join(
            json.loads(f.data)["delta"]
            for f in frames
            if f.data != "[DONE]" and json.loads(f.data)["type"] == "text-delta"
        )
        assert text == "You are in Oslo."
        bad = await client.post(
            "/ai-sdk/assistant", json={"id": "c", "messages": [{"role": "user"}]}
        )
        assert bad.status_code == 422
        assert "field 'messages[0].parts'" in bad.json()["detail"]


def mailer(store: rs.Checkpointer | None) -> rs.CompiledGraph:
    @rs.tool(approval=True)
    def send_mail(to: str) -> str:
        """Send the mail."""
        return f"sent to {to}"

    model = rs.ScriptedModel([rs.Turn(tool_calls=[("send_mail", {"to": "ann"})]), "Mailed."])
    return rs.create_agent(model, tools=[send_mail], name="mailer", checkpointer=store)


@pytest.mark.parametrize("durable", [False, True])
async def test_an_ai_sdk_client_answers_an_approval_and_its_stream_goes_on(
    durable: bool,
) -> None:
    app = mailer(rs.MemoryCheckpointer() if durable else None)
    async with live(create_app({"mailer": app})) as client:
        body = chat_body("chat-9", "Mail Ann")
        async with client.stream("POST", "/ai-sdk/mailer", json=body) as response:
            run_id = response.headers["x-run-id"]
            chunks: list[Any] = []
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                chunks.append("[DONE]" if line == "data: [DONE]" else json.loads(line[6:]))
                if chunks[-1] != "[DONE]" and chunks[-1]["type"] == "tool-approval-request":
                    answer = {"request_id": chunks[-1]["approvalId"], "value": True}
                    posted = await client.post(f"/runs/{run_id}/answers", json=answer)
                    assert posted.status_code == 202, posted.text
    assert chunks[-1] == "[DONE]"
    types = [c["type"] for c in chunks[:-1]]
    assert types.index("tool-approval-request") < types.index("tool-output-available")
    output = next(c for c in chunks[:-1] if c["type"] == "tool-output-available")
    assert output["output"] == "sent to ann"
    assert chunks[-2]["type"] == "finish"
