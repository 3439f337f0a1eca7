"""A Pydantic AI agent's run as a runstream event stream, rendered by pattern matching.

Needs `pip install "runstream[pydantic-ai]"`. The agent here runs on Pydantic
AI's `FunctionModel` (offline, no key); put any model of yours in its place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

import runstream as rs
from runstream.adapters.pydantic_ai import from_pydantic_ai


async def model(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[Any]:
    """Calls the weather tool, then answers."""
    if not any(isinstance(m, ModelResponse) for m in messages):
        yield {0: DeltaToolCall(name="weather", json_args='{"city": "Oslo"}', tool_call_id="w1")}
    else:
        for word in ["It is ", "sunny ", "in Oslo."]:
            yield word


agent: Agent[None, str] = Agent(FunctionModel(stream_function=model), name="forecaster")


@agent.tool_plain
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def main() -> None:
    async for event in from_pydantic_ai(agent, "What is the weather in Oslo?"):
        match event:
            case rs.ToolStart(tool_name=name, payload=args):
                print(f"{event.seq:>2} tool {name} {args}")
            case rs.ToolEnd(result=result):
                print(f"{event.seq:>2} -> {result}")
            case rs.AssistantReply(text=text, done=False):
                print(f"{event.seq:>2} reply {text!r}")
            case rs.Usage(input_tokens=i, output_tokens=o):
                print(f"{event.seq:>2} usage {i} in, {o} out")
            case rs.Workflow(phase=phase):
                print(f"{event.seq:>2} {phase.value}")


if __name__ == "__main__":
    asyncio.run(main())
