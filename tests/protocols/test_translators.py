"""`ops.to_ag_ui` and `ops.to_ai_sdk`: every event class, child runs, awaits, endings.

AG-UI frames are checked against the protocol's own Python models
(`ag-ui-protocol`): each must validate and serialize back to the same JSON.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from ag_ui.core import Event as AgUiEvent
from pydantic import TypeAdapter

import runstream as rs
from runstream import ops
from runstream._demo import build_demo_agent

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

_ag_ui = TypeAdapter(AgUiEvent)


async def frames(stream: Any) -> list[rs.protocols.Frame]:
    sink = rs.MemorySink[rs.protocols.Frame]()
    await rs.drain(stream, sink)
    return sink.items


def check_ag_ui(items: list[rs.protocols.Frame]) -> list[dict[str, Any]]:
    """Each frame validates as an AG-UI event and its wire form survives the round trip."""
    for frame in items:
        event = _ag_ui.validate_python(frame.data)
        assert event.model_dump(mode="json", by_alias=True, exclude_none=True) == frame.data
    check_numbering(items)
    return [f.data for f in items]


def check_numbering(items: list[rs.protocols.Frame]) -> None:
    """Parts count 0, 1, ... within each event; events come in seq order."""
    previous = (-1, -1)
    for frame in items:
        expected = previous[1] + 1 if frame.seq == previous[0] else 0
        assert frame.seq >= previous[0]
        assert frame.part == expected, (frame.seq, frame.part)
        assert frame.id == (str(frame.seq) if frame.part == 0 else f"{frame.seq}.{frame.part}")
        previous = (frame.seq, frame.part)


def types(data: list[dict[str, Any]]) -> list[str]:
    return [d["type"] for d in data]


async def test_the_demo_agent_as_ag_ui_events() -> None:
    app = build_demo_agent(0.0)
    data = check_ag_ui(await frames(app.run("Weather?", thread_id="t9").pipe(ops.to_ag_ui())))
    assert data[0] == {"type": "RUN_STARTED", "threadId": "t9", "runId": data[0]["runId"]}
    finished = data[-1]
    assert finished["type"] == "RUN_FINISHED"
    assert finished["outcome"] == {"type": "success"}
    assert finished["usage"][0]["inputTokens"] > 0
    # Each text message: START, CONTENT..., END, with the run's text.
    text: dict[str, str] = {}
    for d in data:
        if d["type"] == "TEXT_MESSAGE_CONTENT":
            text[d["messageId"]] = text.get(d["messageId"], "") + d["delta"]
    starts = [d["messageId"] for d in data if d["type"] == "TEXT_MESSAGE_START"]
    ends = [d["messageId"] for d in data if d["type"] == "TEXT_MESSAGE_END"]
    assert starts == ends == list(text)
    assert "REASONING_START" in types(data)
    # Steps open and close in pairs.
    opened = [(d.get("subagentRunId"), d["stepName"]) for d in data if d["type"] == "STEP_STARTED"]
    closed = [(d.get("subagentRunId"), d["stepName"]) for d in data if d["type"] == "STEP_FINISHED"]
    assert sorted(opened, key=str) == sorted(closed, key=str)


async def test_a_child_run_is_a_subagent_of_its_tool_call() -> None:
    data = check_ag_ui(await frames(build_demo_agent(0.0).run("Weather?").pipe(ops.to_ag_ui())))
    [started] = [d for d in data if d["type"] == "SUBAGENT_STARTED"]
    child = started["subagentRunId"]
    call = started["parentToolCallId"]
    assert any(d["type"] == "TOOL_CALL_START" and d["toolCallId"] == call for d in data)
    owned = [d for d in data if d.get("subagentRunId") == child]
    assert owned[0] is started
    assert owned[-1]["type"] == "SUBAGENT_FINISHED"
    assert any(d["type"] == "TEXT_MESSAGE_CONTENT" for d in owned)
    # The parent's messages are not the child's.
    parent_text = {d["messageId"] for d in data if d["type"] == "TEXT_MESSAGE_START"} - {
        d["messageId"] for d in owned if d["type"] == "TEXT_MESSAGE_START"
    }
    assert parent_text
    result = next(d for d in data if d["type"] == "TOOL_CALL_RESULT" and d["toolCallId"] == call)
    assert data.index(owned[-1]) < data.index(result)


def single(node: Any, name: str = "g") -> rs.CompiledGraph:
    g = rs.StateGraph(name=name)
    g.add_node("work", node)
    g.add_edge(rs.START, "work")
    return g.compile()


async def test_failures_and_cancels_end_the_ag_ui_run() -> None:
    async def fail(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.tool("lookup", {"q": 1}):
            raise KeyError("nothing")

    data = check_ag_ui(await failed_frames(single(fail).run().pipe(ops.to_ag_ui())))
    result = next(d for d in data if d["type"] == "TOOL_CALL_RESULT")
    assert json.loads(result["content"]) == {"error": "'nothing'"}
    assert data[-1] == {"type": "RUN_ERROR", "message": "'nothing'", "code": "KeyError"}

    async def hang(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.reply("waiting")
        await anyio.sleep_forever()

    data = check_ag_ui(await frames(single(hang).run(timeout=0.05).pipe(ops.to_ag_ui())))
    assert data[-2] == {"type": "STEP_FINISHED", "stepName": "work"}
    assert data[-1]["outcome"] == {"type": "cancelled"}


async def failed_frames(stream: Any) -> list[rs.protocols.Frame]:
    sink = rs.MemorySink[rs.protocols.Frame]()
    with pytest.raises(rs.RunFailed):
        await rs.drain(stream, sink)
    return sink.items


async def test_awaits_end_the_run_the_ag_ui_way() -> None:
    async def ask(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.interrupt("Which city?", request_id="q1")

    data = check_ag_ui(await frames(single(ask).run().pipe(ops.to_ag_ui())))
    assert data[-1]["outcome"] == {
        "type": "interrupt",
        "interrupts": [{"id": "q1", "reason": "clarification", "message": "Which city?"}],
    }

    async def hand_over(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.interrupt_tools([rs.ToolCall("c1", "pick_color", {"of": "sky"})])

    data = check_ag_ui(await frames(single(hand_over).run().pipe(ops.to_ag_ui())))
    handed = ["TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "STEP_FINISHED"]
    assert types(data)[-5:-1] == handed
    assert data[-1]["outcome"] == {"type": "success", "pendingToolCallIds": ["c1"]}


async def test_internal_replies_custom_events_updates_and_state() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        await ctx.custom("progress", {"done": 1})
        async with ctx.tool("fetch", {}) as call:
            await call.update(progress=0.5, message="half")
            call.result = {"ok": True}
        return {"city": "Oslo", "messages": ["kept out"]}

    g = rs.StateGraph(name="g")
    g.add_node("work", node)
    g.add_node("quiet", _internal_reply, internal=True)
    g.add_edge(rs.START, "work")
    g.add_edge("work", "quiet")
    data = check_ag_ui(await frames(g.compile().run().pipe(ops.to_ag_ui())))
    assert {"type": "CUSTOM", "name": "progress", "value": {"done": 1}} in data
    update = next(d for d in data if d["type"] == "CUSTOM" and d["name"] == "tool_update")
    assert update["value"]["progress"] == 0.5
    [delta] = [d for d in data if d["type"] == "STATE_DELTA"]
    assert delta["delta"] == [{"op": "add", "path": "/city", "value": "Oslo"}]
    assert "TEXT_MESSAGE_START" not in types(data)


async def _internal_reply(state: dict[str, Any], ctx: rs.RunContext) -> None:
    await ctx.reply("an internal model call's text")


async def test_the_demo_agent_as_ai_sdk_chunks() -> None:
    items = await frames(build_demo_agent(0.0).run("Weather?").pipe(ops.to_ai_sdk()))
    check_numbering(items)
    data = [f.data for f in items]
    assert types(data)[:2] == ["start", "start-step"]
    assert types(data)[-2:] == ["finish-step", "finish"]
    assert data[-1]["messageMetadata"]["usage"]["inputTokens"] > 0
    opened = [d["id"] for d in data if d["type"] == "text-start"]
    assert opened == [d["id"] for d in data if d["type"] == "text-end"]
    assert "reasoning-start" in types(data)
    inputs = {d["toolCallId"]: d for d in data if d["type"] == "tool-input-available"}
    outputs = {d["toolCallId"] for d in data if d["type"] == "tool-output-available"}
    assert set(inputs) == outputs
    # The child run is a data part of its tool call, never text of the parent's.
    children = [d for d in data if d["type"] == "data-subagent"]
    assert {c["data"]["toolCallId"] for c in children} <= set(inputs)
    assert children[-1]["data"]["status"] == "completed"
    assert children[-1]["data"]["text"]
    assert not any(d.get("id") == children[-1]["id"] for d in data if d["type"] == "text-delta")


async def test_ai_sdk_failures_cancels_and_tool_errors() -> None:
    async def fail(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.tool("lookup", {"q": 1}):
            raise KeyError("nothing")

    data = [f.data for f in await failed_frames(single(fail).run().pipe(ops.to_ai_sdk()))]
    failed = next(d for d in data if d["type"] == "tool-output-error")
    assert failed["errorText"] == "KeyError: 'nothing'"
    assert data[-1] == {"type": "error", "errorText": "KeyError: 'nothing'"}

    async def hang(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await anyio.sleep_forever()

    data = [f.data for f in await frames(single(hang).run(timeout=0.05).pipe(ops.to_ai_sdk()))]
    assert data[-1]["type"] == "abort"


def test_frame_ids_parse_in_both_forms() -> None:
    from runstream.protocols import parse_frame_id

    assert parse_frame_id("12") == (12, 0)
    assert parse_frame_id("12.3") == (12, 3)
    assert parse_frame_id("-1") == (-1, 0)
    for bad in ("", "x", "1.", "1.x", "1.-2", "-2"):
        with pytest.raises(ValueError, match="frame id"):
            parse_frame_id(bad)


@pytest.mark.parametrize("make", [rs.protocols.AgUiTranslator, rs.protocols.AiSdkTranslator])
async def test_encoded_frames_are_the_frames_as_sse(make: Any) -> None:
    from _support.server import parse_sse

    events = rs.MemorySink[rs.Event]()
    await rs.drain(build_demo_agent(0.0).run("Weather?"), events)
    fed, encoded = make(), make()
    for event in events.items:
        frames = fed.feed(event)
        messages, _ = parse_sse(b"".join(encoded.encode(event)).decode())
        assert [json.loads(m.data) for m in messages] == frames
        ids = [rs.protocols.frame_id(event.seq, part) for part in range(len(frames))]
        assert [m.id for m in messages] == ids


async def test_an_approval_shows_its_tool_call_once_in_both_formats() -> None:
    call = rs.ToolCall("c1", "send_mail", {"to": "ann"})

    async def ask_then_run(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.interrupt("Send it?", request_id="a1", tool_call=call)
        async with ctx.tool("send_mail", {"to": "ann"}, tool_call_id="c1") as handle:
            handle.result = "sent"

    app = single(ask_then_run)
    data = check_ag_ui(await frames(app.run().pipe(ops.to_ag_ui())))
    assert types(data).count("TOOL_CALL_START") == 1
    assert data[-1]["outcome"]["interrupts"] == [
        {"id": "a1", "reason": "tool_approval", "message": "Send it?", "toolCallId": "c1"}
    ]
    chunks = [f.data for f in await frames(app.run().pipe(ops.to_ai_sdk()))]
    assert types(chunks).count("tool-input-start") == 1
    approval = next(c for c in chunks if c["type"] == "tool-approval-request")
    assert approval == {"type": "tool-approval-request", "approvalId": "a1", "toolCallId": "c1"}
    assert types(chunks).index("tool-approval-request") < types(chunks).index(
        "tool-output-available"
    )
