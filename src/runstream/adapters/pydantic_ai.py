"""A Pydantic AI agent's run as a runstream event stream (extra `pydantic-ai`).

```python
from pydantic_ai import Agent
from runstream.adapters.pydantic_ai import from_pydantic_ai

agent = Agent("openai:gpt-4o-mini", name="forecaster")
async for event in from_pydantic_ai(agent, "Weather in Oslo?"):
    ...
```
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import Any

from ..graph import CompiledGraph, RunContext, RunStream, TextStream, ToolCallHandle
from ._one_node import one_node

try:
    from pydantic_ai.messages import (
        AgentStreamEvent,
        FunctionToolCallEvent,
        FunctionToolResultEvent,
        PartDeltaEvent,
        PartStartEvent,
        TextPart,
        TextPartDelta,
        ThinkingPart,
        ThinkingPartDelta,
    )
    from pydantic_ai.run import AgentRunResultEvent
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "runstream.adapters.pydantic_ai needs pydantic-ai: "
        f'pip install "runstream[pydantic-ai]" ({exc})'
    ) from None

__all__ = ["ToolRetry", "as_graph", "from_pydantic_ai"]


class ToolRetry(Exception):
    """A tool call Pydantic AI sent back to the model to retry (`ModelRetry`):
    its `ToolEnd` carries this as the error, with the message the model read."""


def from_pydantic_ai(agent: Any, prompt: Any, **run_kwargs: Any) -> RunStream:
    """A cold event stream of `agent.run_stream_events(prompt, **run_kwargs)`.

    Every subscription runs the agent once. Thinking parts become streamed
    `PlannerThought` messages and text parts streamed `AssistantReply`
    messages (one `message_id` each, closed with `done=True`); each tool
    call is a `ToolStart` when Pydantic AI calls it and a `ToolEnd` with its
    return value (or, for a `ModelRetry`, the error `ToolRetry` with the
    message the model reads), in the order they happen; the run's token
    usage is one `Usage` event at the end; an exception fails the run
    (`Workflow(failed)`, then `RunFailed`). Disposing the stream cancels the
    agent's run.

    Args:
        agent: a `pydantic_ai.Agent`; the run's `agent` name is its `name`
            (default `"pydantic_ai"`).
        prompt: the user prompt.
        **run_kwargs: passed to `run_stream_events` (`deps=`,
            `message_history=`, `model=`, ...).
    """
    return as_graph(agent, **run_kwargs).run(prompt)


def as_graph(agent: Any, **run_kwargs: Any) -> CompiledGraph:
    """The agent as a `CompiledGraph` whose input is the prompt.

    What a `Runtime`, `create_app` or `runstream serve` needs in a graph
    mapping: `{"forecaster": as_graph(agent)}` serves the agent by name, and
    `POST /runs` with `{"graph": "forecaster", "input": "Weather in Oslo?"}`
    runs it. Each run is `from_pydantic_ai(agent, input, **run_kwargs)`.
    """
    name = getattr(agent, "name", None) or "pydantic_ai"

    async def drive(prompt: Any, ctx: RunContext) -> None:
        await _drive(agent, prompt, run_kwargs, ctx)

    return one_node(name, "agent", drive)


async def _drive(agent: Any, prompt: Any, run_kwargs: dict[str, Any], ctx: RunContext) -> None:
    calls: dict[str, ToolCallHandle] = {}
    async with AsyncExitStack() as open_calls:
        text = _Texts(ctx)
        try:
            stream: Any = agent.run_stream_events(prompt, **run_kwargs)
            async with stream as events:
                async for event in events:
                    await _on(event, ctx, text, calls, agent)
        finally:
            await text.close()
            # Calls still open (the run failed or was cancelled): end them with it.
            for handle in calls.values():
                open_calls.push_async_exit(handle)


async def _on(
    event: AgentStreamEvent | AgentRunResultEvent[Any],
    ctx: RunContext,
    text: _Texts,
    calls: dict[str, ToolCallHandle],
    agent: Any,
) -> None:
    if isinstance(event, PartStartEvent):
        part = event.part
        if isinstance(part, TextPart):
            await text.write("reply", part.content, event.index)
        elif isinstance(part, ThinkingPart):
            await text.write("thought", part.content, event.index)
        else:
            await text.close()
    elif isinstance(event, PartDeltaEvent):
        delta = event.delta
        if isinstance(delta, TextPartDelta):
            await text.write("reply", delta.content_delta, event.index)
        elif isinstance(delta, ThinkingPartDelta) and delta.content_delta:
            await text.write("thought", delta.content_delta, event.index)
    elif isinstance(event, FunctionToolCallEvent):
        await text.close()
        call = event.part
        handle = ctx.tool(call.tool_name, _args(call.args), tool_call_id=call.tool_call_id)
        calls[call.tool_call_id] = await handle.__aenter__()
    elif isinstance(event, FunctionToolResultEvent):
        # ToolReturnPart (its `outcome` says "retried" for a ModelRetry) in
        # Pydantic AI 2; a RetryPromptPart for a retry in 1.x.
        returned: Any = event.part
        found = calls.pop(returned.tool_call_id, None)
        if found is None:
            return
        handle = found
        content = getattr(returned, "content", None)
        outcome = getattr(returned, "outcome", "success")
        if outcome != "success" or returned.part_kind == "retry-prompt":
            error = ToolRetry(
                content if isinstance(content, str) else json.dumps(content, default=str)
            )
            await handle.__aexit__(ToolRetry, error, None)
        else:
            handle.result = _jsonable(content)
            await handle.__aexit__(None, None, None)
    elif isinstance(event, AgentRunResultEvent):
        await text.close()
        told: Any = event.result.usage  # a property in Pydantic AI 2, a method before
        usage = told if hasattr(told, "input_tokens") else told()
        model = getattr(getattr(agent, "model", None), "model_name", None) or "unknown"
        if usage.input_tokens or usage.output_tokens:
            await ctx.usage(str(model), usage.input_tokens, usage.output_tokens)


class _Texts:
    """The text or thinking part being streamed, as one runstream message."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.kind = ""
        self.index = -1
        self.stream: TextStream | None = None

    async def write(self, kind: str, delta: str, index: int) -> None:
        if self.stream is None or (kind, index) != (self.kind, self.index):
            await self.close()
            opened = self.ctx.stream_reply() if kind == "reply" else self.ctx.stream_thought()
            self.stream = await opened.__aenter__()
            self.kind, self.index = kind, index
        if delta:
            await self.stream.write(delta)

    async def close(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            await stream.__aexit__(None, None, None)


def _args(args: Any) -> Any:
    if isinstance(args, str):
        try:
            return json.loads(args) if args.strip() else {}
        except ValueError:
            return args
    return args if args is not None else {}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
