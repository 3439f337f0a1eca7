"""`from_pydantic_ai` with real Pydantic AI agents on its `FunctionModel` and `TestModel`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic_ai import Agent, ModelRetry
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, DeltaThinkingPart, DeltaToolCall, FunctionModel
from pydantic_ai.models.test import TestModel

import runstream as rs
from _support.invariants import check_invariants, settle, terminal
from _support.watch import Stuck
from runstream.adapters.pydantic_ai import from_pydantic_ai

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def think_call_then_answer(
    messages: list[ModelMessage], info: AgentInfo
) -> AsyncIterator[Any]:
    """First turn: thinking, then two tool calls (one retried); second: the answer."""
    if not any(isinstance(m, ModelResponse) for m in messages):
        yield {0: DeltaThinkingPart(content="Let me ")}
        yield {0: DeltaThinkingPart(content="check.")}
        yield {1: DeltaToolCall(name="weather", json_args='{"city": ', tool_call_id="c1")}
        yield {1: DeltaToolCall(json_args='"Oslo"}')}
        yield {2: DeltaToolCall(name="flaky", json_args="{}", tool_call_id="c2")}
    else:
        yield "It is "
        yield "sunny."


def forecaster(stream: Any = think_call_then_answer) -> Agent[None, str]:
    agent: Agent[None, str] = Agent(FunctionModel(stream_function=stream), name="forecaster")

    @agent.tool_plain
    def weather(city: str) -> str:
        return f"sunny in {city}"

    @agent.tool_plain
    def flaky() -> str:
        raise ModelRetry("try later")

    return agent


async def test_thinking_tools_text_and_usage_become_runstream_events() -> None:
    events = [e async for e in from_pydantic_ai(forecaster(), "Weather in Oslo?")]
    check_invariants(events)
    assert events[0].agent == "forecaster"
    thought = [e for e in events if isinstance(e, rs.PlannerThought)]
    assert "".join(e.text for e in thought) == "Let me check."
    assert thought[-1].done
    reply = [e for e in events if isinstance(e, rs.AssistantReply)]
    assert "".join(e.text for e in reply) == "It is sunny."
    assert len({e.message_id for e in reply}) == 1
    assert reply[-1].done
    starts = {e.tool_call_id: e for e in events if isinstance(e, rs.ToolStart)}
    ends = {e.tool_call_id: e for e in events if isinstance(e, rs.ToolEnd)}
    assert (starts["c1"].tool_name, starts["c1"].payload) == ("weather", {"city": "Oslo"})
    assert (ends["c1"].result, ends["c1"].error) == ("sunny in Oslo", None)
    assert ends["c2"].error is not None
    assert (ends["c2"].error.type, ends["c2"].error.message) == ("ToolRetry", "try later")
    [usage] = [e for e in events if isinstance(e, rs.Usage)]
    assert usage.model == "function::think_call_then_answer"
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert events[-1].phase is rs.Phase.COMPLETED  # type: ignore[union-attr]


async def test_test_model_runs_and_each_subscription_is_a_new_run() -> None:
    agent: Agent[None, str] = Agent(TestModel(custom_output_text="fine"), name="tested")
    stream = from_pydantic_ai(agent, "hi")
    first = [e async for e in stream]
    second = [e async for e in stream]
    for events in (first, second):
        check_invariants(events)
        assert "".join(e.text for e in events if isinstance(e, rs.AssistantReply)) == "fine"
    assert first[0].run_id != second[0].run_id


async def test_an_exception_fails_the_run_with_run_failed() -> None:
    async def broken(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        yield "partial "
        raise RuntimeError("the model fell over")

    seen: list[rs.Event] = []
    with pytest.raises(rs.RunFailed, match="the model fell over"):
        await collect(from_pydantic_ai(forecaster(broken), "hi"), seen)
    check_invariants(seen)
    end = terminal(seen, rs.Phase.FAILED)
    assert end.error is not None
    assert end.error.type == "RuntimeError"


async def test_disposing_cancels_the_agent_run_with_no_task_left() -> None:
    stuck = Stuck()

    async def calls(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[Any]:
        yield {0: DeltaToolCall(name="slow", json_args='{"city": "Oslo"}', tool_call_id="s1")}

    agent: Agent[None, str] = Agent(FunctionModel(stream_function=calls), name="slowpoke")
    agent.tool_plain(stuck.tool)
    events = await stuck.dispose_when_entered(from_pydantic_ai(agent, "hi"))
    check_invariants(events)
    terminal(events, rs.Phase.CANCELED)
    [tool_end] = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert tool_end.error is not None
    await settle()


async def test_operators_and_sinks_work_on_it_unchanged() -> None:
    replies = rs.MemorySink[rs.AssistantReply]()
    stream = from_pydantic_ai(forecaster(), "hi").pipe(rs.ops.of_type(rs.AssistantReply))
    await rs.drain(stream, replies)
    assert "".join(e.text for e in replies.items) == "It is sunny."


async def collect(stream: rs.RunStream, into: list[rs.Event]) -> None:
    async for event in stream:
        into.append(event)


async def test_as_a_graph_it_is_served_by_name_over_http() -> None:
    from _support.server import live, read_sse
    from runstream.adapters.pydantic_ai import as_graph
    from runstream.server import create_app

    async with live(create_app({"forecaster": as_graph(forecaster())})) as client:
        started = await client.post("/runs", json={"graph": "forecaster", "input": "Weather?"})
        assert started.status_code == 201
        _, events = await read_sse(client, started.json()["events_url"])
    check_invariants(events)
    assert "".join(e.text for e in events if isinstance(e, rs.AssistantReply)) == "It is sunny."
    terminal(events, rs.Phase.COMPLETED)
