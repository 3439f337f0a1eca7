"""An agent served over AG-UI, with a tool that runs in the client.

It serves a `create_agent` agent with `create_app` on loopback, then plays
the AG-UI client (what CopilotKit or `@ag-ui/client`'s `HttpAgent` does) with
httpx:

1. POST /ag-ui/assistant a `RunAgentInput` that declares a client-side tool,
   `get_location` (in a browser it would ask the Geolocation API). The model
   calls it; the run ends with `RUN_FINISHED` whose outcome lists the call
   in `pendingToolCallIds`.
2. Run `get_location` here, and POST the conversation again with its
   result. The agent goes on: it calls its own server-side `weather` tool,
   then answers.

Each AG-UI event is printed with its SSE id. Offline: a `ScriptedModel`
plays the model. Needs `pip install "runstream[server]"`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from _loopback import serve_and_run, sse

import runstream as rs
from runstream.server import create_app


@rs.tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny and 21 C in {city}"


model = rs.ScriptedModel(
    [
        rs.Turn(
            thought="Only the browser knows where the user is.", tool_calls=[("get_location", {})]
        ),
        rs.Turn(tool_calls=[("weather", {"city": "Oslo"})]),
        "It is sunny and 21 C in Oslo.",
    ]
)
assistant = rs.create_agent(model, tools=[weather], name="assistant")

# What the client declares: the agent may call it, the client runs it.
GET_LOCATION = {
    "name": "get_location",
    "description": "The user's city, from the browser.",
    "parameters": {"type": "object", "properties": {}},
}


def get_location() -> dict[str, str]:
    """The client-side tool: here, a fixed answer."""
    return {"city": "Oslo"}


async def run_agent(
    client: httpx.AsyncClient, messages: list[dict[str, Any]], run: int
) -> list[dict[str, Any]]:
    """POST a RunAgentInput; print and return the AG-UI events of the answer."""
    body = {
        "threadId": "thread-1",
        "runId": f"client-run-{run}",
        "messages": messages,
        "tools": [GET_LOCATION],
        "context": [],
        "state": {},
        "forwardedProps": {},
    }
    events = []
    async with client.stream("POST", "/ag-ui/assistant", json=body) as response:
        response.raise_for_status()
        async for frame_id, data in sse(response):
            event = json.loads(data)
            print(f"  {frame_id:>5}  {event['type']:<26} {describe(event)}")
            events.append(event)
    return events


def describe(event: dict[str, Any]) -> str:
    """What is worth a look in an event (ids left out: they change every run)."""
    match event:
        case {"type": "RUN_STARTED", "threadId": thread}:
            return f"thread {thread}"
        case {"delta": delta}:
            return repr(delta)
        case {"toolCallName": name} | {"stepName": name}:
            return name
        case {"type": "TOOL_CALL_RESULT", "content": content}:
            return content
        case {"type": "RUN_FINISHED", "outcome": outcome}:
            pending = len(outcome.get("pendingToolCallIds", []))
            tokens = sum(u["totalTokens"] for u in event.get("usage", []))
            return f"{outcome['type']}, {pending} tool call(s) for the client, {tokens} tokens"
    return ""


def messages_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages an AG-UI client keeps from a run's events, as `@ag-ui/client` does.

    Text messages; tool calls in the assistant message `parentMessageId`
    names (a turn's text message, or a message of their own); tool results.
    The client keeps reasoning messages too, and the server leaves them out
    of the conversation, so they are left out here.
    """
    messages: dict[str, dict[str, Any]] = {}
    calls: dict[str, dict[str, Any]] = {}
    for event in events:
        match event:
            case {"type": "TEXT_MESSAGE_START", "messageId": mid}:
                messages[mid] = {"id": mid, "role": "assistant", "content": ""}
            case {"type": "TEXT_MESSAGE_CONTENT", "messageId": mid, "delta": delta}:
                messages[mid]["content"] += delta
            case {"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": name}:
                parent = event.get("parentMessageId", call_id)
                message = messages.setdefault(parent, {"id": parent, "role": "assistant"})
                call = {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                message.setdefault("toolCalls", []).append(call)
                calls[call_id] = call
            case {"type": "TOOL_CALL_ARGS", "toolCallId": call_id, "delta": delta}:
                calls[call_id]["function"]["arguments"] += delta
            case {
                "type": "TOOL_CALL_RESULT",
                "messageId": mid,
                "toolCallId": call_id,
                "content": c,
            }:
                messages[mid] = {"id": mid, "role": "tool", "toolCallId": call_id, "content": c}
    return list(messages.values())


async def main(client: httpx.AsyncClient) -> None:
    question = {"id": "user-1", "role": "user", "content": "What is the weather where I am?"}
    print("POST /ag-ui/assistant")
    first = await run_agent(client, [question], run=1)

    # The run has ended, waiting for the client: run its tool calls here.
    history = [question, *messages_of(first)]
    for call_id in first[-1]["outcome"]["pendingToolCallIds"]:
        result = get_location()
        print(f"client runs get_location() -> {result}")
        history.append(
            {
                "id": f"result-{call_id}",
                "role": "tool",
                "toolCallId": call_id,
                "content": json.dumps(result),
            }
        )

    print("POST /ag-ui/assistant (the conversation, with the tool's result)")
    second = await run_agent(client, history, run=2)
    answer = "".join(e["delta"] for e in second if e["type"] == "TEXT_MESSAGE_CONTENT")
    print(f"Answer: {answer}")


if __name__ == "__main__":
    asyncio.run(serve_and_run(create_app({"assistant": assistant}), main))
