"""The protocols' own JavaScript clients against a live server.

Node scripts in tests/js/ read what the server sends with the libraries the
protocols ship: `@ag-ui/core`'s EventSchemas and `@ag-ui/client`'s
verifyEvents and HttpAgent for AG-UI; the `ai` package's
parseJsonEventStream, uiMessageChunkSchema, readUIMessageStream and the Chat
behind `useChat` (with its DefaultChatTransport) for the AI SDK. Each script
prints one JSON object, or exits non-zero with the library's error. What they
report is checked against the run's own events. The resume tests read through
`_support.proxy`, which cuts the first connections in the middle of frames.

Needs `node` and `tests/js/node_modules` (`npm ci --prefix tests/js`, which
scripts/ensure-services.sh runs): without them these tests fail, never skip.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import runstream as rs
from _support.proxy import Cut, MidFrame, cutting_proxy
from _support.server import live, parse_sse, read_sse, start, wait_status
from runstream._demo import build_demo_agent
from runstream._ids import new_id
from runstream.server import create_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

JS = Path(__file__).resolve().parents[1] / "js"
NODE_SECONDS = 60


def node() -> str:
    """The `node` executable; fails (never skips) when it or the libraries are missing."""
    found = shutil.which("node")
    if found is None:
        pytest.fail(
            "`node` is not on PATH: the JS client tests need Node.js and npm "
            "(sh scripts/ensure-services.sh installs Debian's nodejs and npm)"
        )
    modules = JS / "node_modules"
    if not modules.is_dir():
        pytest.fail(
            f"{modules} is missing: run `npm ci --prefix tests/js` "
            "(sh scripts/ensure-services.sh does it)"
        )
    return found


async def run_js(script: str, *args: str) -> dict[str, Any]:
    """Run tests/js/`script` with `args`; its JSON output, after checking it printed no warning."""
    command = [node(), str(JS / script), *args]
    with anyio.fail_after(NODE_SECONDS):
        done = await anyio.run_process(command, cwd=JS, check=False)
    stderr = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        pytest.fail(f"{script} exited with {done.returncode}; the library said:\n{stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["warnings"] == [], f"{script}: the libraries warned: {result['warnings']}"
    return result


# --- what the run itself produced -------------------------------------------------


async def run_events(client: httpx.AsyncClient, run_id: str) -> list[rs.Event]:
    """The whole run, in runstream's own format, once it has ended."""
    assert await wait_status(client, run_id) in ("completed", "awaiting")
    response, events = await read_sse(client, f"/runs/{run_id}/events")
    assert response.status_code == 200
    return events


def replies(events: list[rs.Event], *, root_only: bool = False) -> dict[str, str]:
    """The text of each visible assistant message, by message id, in order."""
    out: dict[str, str] = {}
    for e in events:
        if isinstance(e, rs.AssistantReply) and not e.internal:
            if root_only and e.run.parent_run_id is not None:
                continue
            out[e.message_id] = out.get(e.message_id, "") + e.text
    return out


def thoughts(events: list[rs.Event]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in events:
        if isinstance(e, rs.PlannerThought) and not e.internal:
            out[e.message_id] = out.get(e.message_id, "") + e.text
    return out


def tool_calls(events: list[rs.Event]) -> dict[str, tuple[str, Any]]:
    """Every tool call, run here or awaited from the client: id -> (name, arguments)."""
    out: dict[str, tuple[str, Any]] = {}
    for e in events:
        if isinstance(e, rs.ToolStart):
            out[e.tool_call_id] = (e.tool_name, e.payload)
        elif isinstance(e, rs.AwaitExternalTools):
            out.update({c.tool_call_id: (c.tool_name, c.payload) for c in e.calls})
    return out


def tool_results(events: list[rs.Event]) -> dict[str, Any]:
    return {e.tool_call_id: e.result for e in events if isinstance(e, rs.ToolEnd)}


def decoded(content: str) -> Any:
    """A tool message's content, decoded when it is JSON (a string result is sent as is)."""
    try:
        return json.loads(content)
    except ValueError:
        return content


# --- the graphs served ------------------------------------------------------------


def client_tools_agent() -> rs.CompiledGraph:
    """Says something, then calls two tools the client runs; answers from their results."""
    model = rs.ScriptedModel(
        [
            rs.Turn(
                text="Let me check.",
                tool_calls=[("get_location", {}), ("get_time", {"zone": "local"})],
            ),
            "You are in Oslo, and it is noon.",
        ]
    )
    return rs.create_agent(model, name="assistant")


CLIENT_TOOLS = [
    {
        "name": "get_location",
        "description": "The user's location, from the browser",
        "parameters": {"type": "object", "properties": {}},
    },
    {
        "name": "get_time",
        "description": "The user's local time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
]


def gated_agent(gate: anyio.Event) -> rs.CompiledGraph:
    """An agent whose tool waits for `gate`: its stream stops half-way until the test opens it."""

    @rs.tool
    async def wait_for_gate(reason: str) -> dict[str, str]:
        """Wait until the gate opens."""
        await gate.wait()
        return {"gate": "open", "reason": reason}

    model = rs.ScriptedModel(
        [
            rs.Turn(
                thought="The answer depends on the gate.",
                text="Waiting for the gate to open.",
                tool_calls=[("wait_for_gate", {"reason": "the answer is behind it"})],
            ),
            "The gate opened, and here is the answer.",
        ]
    )
    return rs.create_agent(model, tools=[wait_for_gate], name="gated")


def locator() -> rs.CompiledGraph:
    """Hands `get_location` to the client (the AI SDK route takes no tool definitions),
    then answers from the result the client sends back."""

    async def answer(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        last = state["messages"][-1]
        async with ctx.stream_reply() as reply:
            if last["role"] == "tool":
                await reply.write(f"You are in {last['content']}.")
                return {}
            await reply.write("Let me check.")
        call = rs.ToolCall(f"call_{new_id()[:12]}", "get_location", {"precision": "city"})
        await ctx.interrupt_tools([call])
        return {}

    graph = rs.StateGraph(name="locator")
    graph.add_node("answer", answer)
    graph.add_edge(rs.START, "answer")
    return graph.compile()


def approver() -> rs.CompiledGraph:
    """Asks the user to approve a tool call, and stops there."""

    async def ask(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.reply("I would like to send the mail.")
        call = rs.ToolCall("mail-1", "send_mail", {"to": "ann@example.org"})
        await ctx.interrupt("Send the mail to Ann?", request_id="approve-1", tool_call=call)

    g = rs.StateGraph(name="approver")
    g.add_node("ask", ask)
    g.add_edge(rs.START, "ask")
    return g.compile()


def graphs(gate: anyio.Event | None = None) -> dict[str, rs.CompiledGraph]:
    served = {
        "demo": build_demo_agent(0.0),
        "assistant": client_tools_agent(),
        "locator": locator(),
        "approver": approver(),
    }
    if gate is not None:
        served["gated"] = gated_agent(gate)
    return served


@asynccontextmanager
async def server(gate: anyio.Event | None = None) -> AsyncIterator[httpx.AsyncClient]:
    async with live(create_app(graphs(gate))) as client:
        yield client


def frames_of(text: str) -> tuple[list[tuple[str, Any]], bool]:
    """A protocol stream's frames as (id, JSON), and whether it ended with `[DONE]`."""
    frames, _ = parse_sse(text)
    done = bool(frames) and frames[-1].data == "[DONE]"
    if done:
        frames = frames[:-1]
    out = []
    for f in frames:
        assert f.id is not None, f
        out.append((f.id, json.loads(f.data)))
    return out, done


# --- AG-UI --------------------------------------------------------------------------


def check_ag_ui_messages(messages: list[dict[str, Any]], events: list[rs.Event]) -> None:
    """The messages @ag-ui/client made of the stream hold what the run said and did."""
    texts = {m["id"]: m["content"] for m in messages if m["role"] == "assistant" and "content" in m}
    assert texts == replies(events)
    reasoning = {m["id"]: m["content"] for m in messages if m["role"] == "reasoning"}
    assert reasoning == thoughts(events)
    calls = {
        c["id"]: (c["function"]["name"], json.loads(c["function"]["arguments"]))
        for m in messages
        if m["role"] == "assistant"
        for c in m.get("toolCalls", [])
    }
    assert calls == tool_calls(events)
    results = {m["toolCallId"]: decoded(m["content"]) for m in messages if m["role"] == "tool"}
    assert results == tool_results(events)


async def test_ag_ui_frames_pass_event_schemas_and_verify_events() -> None:
    async with server() as client:
        run_id = await start(client, "demo", input="Is solar cheaper than coal?")
        events = await run_events(client, run_id)
        url = f"{client.base_url}/runs/{run_id}/events?format=ag-ui"
        out = await run_js("ag_ui_stream.mjs", url)
    frames = out["frames"]
    assert frames[0]["data"] == {"type": "RUN_STARTED", "threadId": run_id, "runId": run_id}
    assert frames[-1]["data"]["type"] == "RUN_FINISHED"
    assert frames[-1]["data"]["outcome"] == {"type": "success"}
    ids = [f["id"] for f in frames]
    assert len(set(ids)) == len(ids)
    # The child agent's reply is its own message, attributed to its run.
    children = {e.run.run_id for e in events if e.run.parent_run_id is not None}
    assert children
    child_messages = [m for m in out["messages"] if "subagentRunId" in m]
    assert {m["subagentRunId"] for m in child_messages} == children
    check_ag_ui_messages(out["messages"], events)
    # The model's three parallel calls are one assistant message (one turn).
    [turn] = [m for m in out["messages"] if m["role"] == "assistant" and m.get("toolCalls")]
    assert len(turn["toolCalls"]) == 3


async def test_ag_ui_start_and_stream_passes_the_libraries() -> None:
    async with server() as client:
        body = {"graph": "demo", "input": "Is solar cheaper than coal?", "format": "ag-ui"}
        out = await run_js("ag_ui_stream.mjs", f"{client.base_url}/runs/stream", json.dumps(body))
        run_id = out["frames"][0]["data"]["runId"]
        events = await run_events(client, run_id)
    check_ag_ui_messages(out["messages"], events)


async def test_http_agent_runs_a_client_tool_round_trip() -> None:
    async with server() as client:
        out = await run_js(
            "ag_ui_agent.mjs",
            f"{client.base_url}/ag-ui/assistant",
            json.dumps(CLIENT_TOOLS),
            "Where am I, and what time is it?",
            json.dumps({"get_location": "Oslo", "get_time": "12:00"}),
        )
        first, second = out["runs"]
        # The events echo the client's runId; the server's id is in X-Run-Id.
        for n, run in enumerate(out["runs"]):
            started = next(e for e in run["events"] if e["type"] == "RUN_STARTED")
            assert (started["threadId"], started["runId"]) == ("js-thread", f"js-run-{n}")
        asked = await run_events(client, first["serverRunId"])
        answered = await run_events(client, second["serverRunId"])
    # The first run ends waiting for the two calls the client runs.
    calls = tool_calls(asked)
    assert [name for name, _ in calls.values()] == ["get_location", "get_time"]
    assert first["outcome"] == "success"
    assert first["pendingToolCallIds"] == list(calls)
    # The second run answers from the results the client sent, and waits for nothing.
    assert second["outcome"] == "success"
    assert second["pendingToolCallIds"] == []
    [answer] = replies(answered).values()
    assert answer == "You are in Oslo, and it is noon."
    # The conversation the client holds: one assistant turn with both calls, their
    # results, and the answer.
    messages = out["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    turn = messages[1]
    assert turn["content"] == "Let me check."
    assert {
        c["id"]: (c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in turn["toolCalls"]
    } == calls
    assert [(m["toolCallId"], m["content"]) for m in messages[2:4]] == [
        (call_id, result) for call_id, result in zip(calls, ["Oslo", "12:00"], strict=True)
    ]
    assert messages[4]["content"] == answer


# --- AI SDK -------------------------------------------------------------------------


def check_ui_message(message: dict[str, Any], events: list[rs.Event], run_id: str) -> None:
    """The UI message readUIMessageStream built holds what the run said and did."""
    assert message["id"] == run_id
    assert message["role"] == "assistant"
    parts = message["parts"]
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert texts == list(replies(events, root_only=True).values())
    assert all(p["state"] == "done" for p in parts if p["type"] in ("text", "reasoning"))
    assert [p["text"] for p in parts if p["type"] == "reasoning"] == list(thoughts(events).values())
    root = [e for e in events if e.run.parent_run_id is None]
    calls, results = tool_calls(root), tool_results(root)
    tools = [p for p in parts if p["type"].startswith("tool-")]
    assert [(p["toolCallId"], p["type"]) for p in tools] == [
        (call_id, f"tool-{name}") for call_id, (name, _) in calls.items()
    ]
    for part in tools:
        assert part["state"] == "output-available", part
        assert part["input"] == calls[part["toolCallId"]][1]
        assert part["output"] == results[part["toolCallId"]]


async def test_ai_sdk_chat_read_as_use_chat_reads_it() -> None:
    chat = {
        "id": "chat-1",
        "messages": [
            {
                "id": "u1",
                "role": "user",
                "parts": [{"type": "text", "text": "Is solar cheaper than coal?"}],
            }
        ],
        "trigger": "submit-message",
        "messageId": None,
    }
    async with server() as client:
        out = await run_js("ai_sdk_stream.mjs", f"{client.base_url}/ai-sdk/demo", json.dumps(chat))
        run_id = out["headers"]["runId"]
        events = await run_events(client, run_id)
    assert out["headers"]["uiMessageStream"] == "v1"
    assert [c["type"] for c in out["chunks"]][:2] == ["start", "start-step"]
    assert out["chunks"][-1]["type"] == "finish"
    message = out["message"]
    check_ui_message(message, events, run_id)
    # The answer after the tool calls is a step of its own: a chat that sends
    # itself again once client-side tools are answered does not resend this one.
    steps = [p["type"] for p in message["parts"] if p["type"] == "step-start"]
    assert len(steps) == 2
    assert out["sendsAgain"] is False
    # The child agent is a data part of its tool call, with its text.
    [child] = [p for p in message["parts"] if p["type"] == "data-subagent"]
    child_run = child["data"]["runId"]
    assert child["data"]["status"] == "completed"
    assert child["data"]["toolCallId"] in tool_calls(events)
    child_events = [e for e in events if e.run.run_id == child_run]
    assert child["data"]["text"] == "".join(replies(child_events).values())
    usage = [e for e in events if isinstance(e, rs.Usage)]  # the whole tree's
    assert message["metadata"]["usage"] == {
        "inputTokens": sum(u.input_tokens for u in usage),
        "outputTokens": sum(u.output_tokens for u in usage),
        "totalTokens": sum(u.input_tokens + u.output_tokens for u in usage),
    }


async def test_an_approval_is_an_interrupt_and_a_tool_approval_request() -> None:
    async with server() as client:
        run_id = await start(client, "approver")
        assert await wait_status(client, run_id) == "completed"
        base = f"{client.base_url}/runs/{run_id}/events?format="
        ag_ui = await run_js("ag_ui_stream.mjs", base + "ag-ui")
        ai_sdk = await run_js("ai_sdk_stream.mjs", base + "ai-sdk")
    outcome = ag_ui["frames"][-1]["data"]["outcome"]
    assert outcome == {
        "type": "interrupt",
        "interrupts": [
            {
                "id": "approve-1",
                "reason": "tool_approval",
                "message": "Send the mail to Ann?",
                "toolCallId": "mail-1",
            }
        ],
    }
    [call] = [m for m in ag_ui["messages"] if m.get("toolCalls")]
    assert call["toolCalls"][0]["function"]["name"] == "send_mail"
    [part] = [p for p in ai_sdk["message"]["parts"] if p["type"] == "tool-send_mail"]
    assert part["state"] == "approval-requested"
    assert part["approval"]["id"] == "approve-1"
    assert part["input"] == {"to": "ann@example.org"}


async def test_use_chat_runs_a_client_tool_round_trip() -> None:
    """The AI SDK's Chat (what useChat wraps) and its DefaultChatTransport, unchanged."""
    async with server() as client:
        out = await run_js(
            "ai_sdk_chat.mjs",
            "send",
            f"{client.base_url}/ai-sdk/locator",
            "chat-7",
            "Where am I?",
            json.dumps({"get_location": "Oslo"}),
        )
        asking, answering, reconnect = out["requests"]
        asked = await run_events(client, asking["runId"])
        answered = await run_events(client, answering["runId"])
    # The chat was posted, posted again with the tool's output, then reconnected
    # to its stream, which had ended: 204.
    assert [(r["method"], r["status"]) for r in out["requests"]] == [
        ("POST", 200),
        ("POST", 200),
        ("GET", 204),
    ]
    assert reconnect["url"] == f"{client.base_url}/ai-sdk/locator/chat-7/stream"
    assert asking["body"]["id"] == answering["body"]["id"] == "chat-7"
    [(call_id, (name, arguments))] = tool_calls(asked).items()
    [turn] = [m for m in answering["body"]["messages"] if m["role"] == "assistant"]
    assert answering["body"]["messageId"] == turn["id"]
    [part] = [p for p in turn["parts"] if p["type"].startswith("tool-")]
    assert part == {
        "type": f"tool-{name}",
        "toolCallId": call_id,
        "state": "output-available",
        "input": arguments,
        "output": "Oslo",
    }
    # The last assistant message holds the whole exchange, as useChat shows it.
    last = out["messages"][-1]
    assert last["role"] == "assistant"
    assert (
        [p["text"] for p in last["parts"] if p["type"] == "text"]
        == [
            *replies(asked).values(),
            *replies(answered).values(),
        ]
        == ["Let me check.", "You are in Oslo."]
    )
    assert [p for p in last["parts"] if p["type"].startswith("tool-")] == [part]
    # The second request continued that message (its `messageId`): useChat kept
    # one assistant message, not a second one repeating the first's parts.
    assert [(m["role"], m["id"]) for m in out["messages"][1:]] == [("assistant", turn["id"])]


async def test_use_chat_reconnects_to_a_chat_still_streaming() -> None:
    """A page reload: useChat's resumeStream gets the whole stream again, live."""
    gate = anyio.Event()
    chat = {
        "id": "chat-9",
        "messages": [
            {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "What is there?"}]}
        ],
        "trigger": "submit-message",
        "messageId": None,
    }
    async with server(gate) as client:
        # The first reader leaves after the first frames; the run goes on, held at the gate.
        async with client.stream("POST", "/ai-sdk/gated", json=chat) as response:
            run_id = response.headers["x-run-id"]
            async for line in response.aiter_lines():
                if line.startswith("data: ") and '"text-delta"' in line:
                    break
        async with cutting_proxy(str(client.base_url), []) as proxy:

            async def open_gate() -> None:
                # Once the reconnection is answered with a stream, the run may end.
                await proxy.wait_until(
                    lambda connections: bool(connections and connections[0].sent)
                )
                assert (await client.get(f"/runs/{run_id}")).json()["status"] == "running"
                gate.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(open_gate)
                out = await run_js(
                    "ai_sdk_chat.mjs",
                    "resume",
                    f"{proxy.url}/ai-sdk/gated",
                    "chat-9",
                    "What is there?",
                )
        events = await run_events(client, run_id)
    [reconnect] = out["requests"]
    assert (reconnect["method"], reconnect["status"], reconnect["runId"]) == ("GET", 200, run_id)
    user, message = out["messages"]
    assert user["role"] == "user"
    check_ui_message(message, events, run_id)


# --- resuming through a proxy that cuts connections --------------------------------

# Cut points for the first connections. `MidFrame(n, k)` cuts k bytes into the
# n-th frame of that connection's response (which begins after the frame the
# client resumes from): inside `id:` (2), after a whole `id: NN` line (9: the
# client has read the id of a frame it never got, and must not resume from
# it), inside the JSON (20 to 40). 60 bytes cuts the HTTP headers: that
# connection brings no frame at all.
CUTS: list[Cut] = [
    MidFrame(3, 20),
    MidFrame(4, 2),
    60,
    MidFrame(6, 40),
    MidFrame(1, 9),
    MidFrame(12, 25),
]


def check_resumed(out: dict[str, Any], uncut: list[tuple[str, Any]], cuts: list[Cut]) -> None:
    """Every frame once, in order, the same as an uncut read; each cut left a partial frame."""
    got = [(f["id"], f["data"]) for f in out["frames"]]
    ids = [frame_id for frame_id, _ in got]
    assert len(set(ids)) == len(ids), "a frame came twice"
    assert ids == [frame_id for frame_id, _ in uncut], "a frame is missing or out of order"
    assert got == uncut
    connections = out["connections"]
    assert len(connections) == len(cuts) + 1
    for connection, cut in zip(connections, cuts, strict=False):
        assert connection["cut"] is not None, connection
        if isinstance(cut, MidFrame):
            assert connection["midFrame"], f"the cut at {cut} fell between frames: {connection}"
    last = connections[-1]
    assert last["cut"] is None
    assert last["status"] == 200
    # Each reconnection asked for the frames after the last one it had.
    seen: list[str] = []
    for connection in connections:
        assert connection["lastEventId"] == (seen[-1] if seen else None)
        seen += ids[len(seen) : len(seen) + connection["frames"]]


@pytest.mark.parametrize("format", ["ag-ui", "ai-sdk"])
async def test_resume_through_cut_connections_is_exact(format: str) -> None:
    script = "ag_ui_stream.mjs" if format == "ag-ui" else "ai_sdk_stream.mjs"
    async with server() as client:
        run_id = await start(client, "demo", input="Is solar cheaper than coal?")
        assert await wait_status(client, run_id) == "completed"
        path = f"/runs/{run_id}/events?format={format}"
        uncut, done = frames_of((await client.get(path)).text)
        assert done is (format == "ai-sdk")
        whole = await run_js(script, f"{client.base_url}{path}")
        async with cutting_proxy(str(client.base_url), CUTS) as proxy:
            out = await run_js("resume.mjs", f"{proxy.url}{path}", format)
        assert [c.index for c in proxy.cuts_made] == list(range(len(CUTS)))
    check_resumed(out, uncut, CUTS)
    # The library accepts the stream put back together, and makes of it what it
    # makes of an uncut read.
    if format == "ag-ui":
        assert out["messages"] == whole["messages"]
    else:
        assert out["done"]
        assert out["message"] == whole["message"]


LIVE_CUTS: list[Cut] = [MidFrame(4, 11), MidFrame(2, 30), MidFrame(3, 5)]


@pytest.mark.parametrize("format", ["ag-ui", "ai-sdk"])
async def test_resume_of_a_live_run_through_cut_connections(format: str) -> None:
    """The run is still going (held at a gate) while the first connections are cut."""
    gate = anyio.Event()
    async with server(gate) as client:
        run_id = await start(client, "gated", input="What is behind the gate?")
        path = f"/runs/{run_id}/events?format={format}"
        async with cutting_proxy(str(client.base_url), LIVE_CUTS) as proxy:

            async def open_gate() -> None:
                # Two connections have been cut before the run could end.
                await proxy.wait_connections(3)
                assert (await client.get(f"/runs/{run_id}")).json()["status"] == "running"
                gate.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(open_gate)
                out = await run_js("resume.mjs", f"{proxy.url}{path}", format)
        assert len(proxy.cuts_made) == len(LIVE_CUTS)
        events = await run_events(client, run_id)
        uncut, _ = frames_of((await client.get(path)).text)
    check_resumed(out, uncut, LIVE_CUTS)
    if format == "ag-ui":
        check_ag_ui_messages(out["messages"], events)
    else:
        check_ui_message(out["message"], events, run_id)
