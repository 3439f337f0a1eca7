"""Render every kind of event with one exhaustive `match`.

mypy checks that the `match` handles every event class: remove a case and
`assert_never` stops type-checking.
"""

import asyncio
from typing import assert_never

import runstream as rs


@rs.tool
async def lookup(city: str) -> dict[str, object]:
    """Look up the weather of a city."""
    await asyncio.sleep(0.01)
    return {"city": city, "sky": "clear", "celsius": 21}


model = rs.ScriptedModel(
    [
        rs.Turn(thought="I should look it up.", tool_calls=[("lookup", {"city": "Lisbon"})]),
        "It is clear and 21 °C in Lisbon.",
    ]
)
agent = rs.create_agent(model, tools=[lookup], name="weather")


def describe(ev: rs.Event) -> str | None:
    match ev:
        case rs.AssistantReply(text=text, done=False):
            return f"reply chunk {text!r}"
        case rs.AssistantReply():
            return "reply done"
        case rs.PlannerThought(text=text):
            return f"thought {text!r}" if text else None
        case rs.ToolStart(tool_name=name, payload=payload):
            return f"tool {name} started with {payload}"
        case rs.ToolUpdate(tool_name=name, progress=progress):
            return f"tool {name} at {progress}"
        case rs.ToolEnd(tool_name=name, error=None, result=result):
            return f"tool {name} returned {result}"
        case rs.ToolEnd(tool_name=name, error=error):
            return f"tool {name} failed: {error}"
        case rs.Usage(model=name, input_tokens=i, output_tokens=o):
            return f"{name} used {i} + {o} tokens"
        case rs.Workflow(phase=phase):
            return f"phase {phase.value}"
        case rs.AgentRunStarted(child_agent=child):
            return f"child agent {child} started"
        case rs.AwaitClarification(question=question):
            return f"needs an answer: {question}"
        case rs.AwaitExternalTools(calls=calls):
            return f"needs {len(calls)} external tool results"
        case rs.StateUpdate(node=node):
            return f"node {node} updated the state"
        case rs.Custom(name=name, data=data):
            return f"custom {name}: {data}"
        case _:
            assert_never(ev)


async def main() -> None:
    async for ev in agent.run("What's the weather in Lisbon?"):
        line = describe(ev)
        if line is not None:
            print(f"{ev.seq:3d} {line}")


if __name__ == "__main__":
    asyncio.run(main())
