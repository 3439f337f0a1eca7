"""An agent served to the AI SDK's `useChat`, and a dropped stream resumed exactly.

It serves a `create_agent` agent with `create_app` on loopback, then plays
`useChat`'s `DefaultChatTransport` with httpx:

1. POST /ai-sdk/forecaster the body `useChat` posts (`id`, `messages` as UI
   messages, `trigger`), and print the UI message stream chunks as they
   come, each with its SSE id.
2. Drop the connection in the middle of the answer. Leaving does not cancel
   the run on this route: it goes on on the server.
3. Reconnect to GET /ai-sdk/forecaster/{chat id}/stream with
   `Last-Event-ID` set to the last id received: the server sends exactly
   the chunks after it, none missing, none repeated, and `data: [DONE]`.

Then it checks the two parts against the whole run, read again from
GET /runs/{run id}/events?format=ai-sdk (the run id is in the `X-Run-Id`
header), and shows that the chat's stream route answers 204 once the run
has ended. Offline: a `ScriptedModel` plays the model, slowed down so that
the drop happens mid-run. Needs `pip install "runstream[server]"`.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from _loopback import serve_and_run, sse

import runstream as rs
from runstream.server import create_app


@rs.tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny and 21 C in {city}"


model = rs.ScriptedModel(
    [rs.Turn(tool_calls=[("weather", {"city": "Oslo"})]), "It is sunny and 21 C in Oslo today."],
    delay=0.02,
)
forecaster = rs.create_agent(model, tools=[weather], name="forecaster")

CHAT = {
    "id": "chat-1",
    "messages": [
        {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Weather in Oslo?"}]}
    ],
    "trigger": "submit-message",
    "messageId": None,
}


async def main(client: httpx.AsyncClient) -> None:
    print("POST /ai-sdk/forecaster")
    first: list[tuple[str, str]] = []
    async with client.stream("POST", "/ai-sdk/forecaster", json=CHAT) as response:
        response.raise_for_status()
        version = response.headers["x-vercel-ai-ui-message-stream"]
        print(f"  (header x-vercel-ai-ui-message-stream: {version})")
        run_id = response.headers["x-run-id"]
        async for frame in sse(response):
            show(*frame)
            first.append(frame)
            if len(first) > 1 and chunk_type(first[-2][1]) == chunk_type(frame[1]) == "text-delta":
                break  # two words of the answer in: the connection drops
    last_id = first[-1][0]
    status = (await client.get(f"/runs/{run_id}")).json()["status"]
    print(f"-- connection dropped after id {last_id}; the run is {status} --")

    print(f"GET /ai-sdk/forecaster/chat-1/stream with Last-Event-ID: {last_id}")
    rest: list[tuple[str, str]] = []
    resume = "/ai-sdk/forecaster/chat-1/stream"
    async with client.stream("GET", resume, headers={"Last-Event-ID": last_id}) as response:
        async for frame in sse(response):
            show(*frame)
            rest.append(frame)

    async with client.stream("GET", f"/runs/{run_id}/events?format=ai-sdk") as response:
        everything = [frame async for frame in sse(response)]
    print(f"the two parts are the whole run, exactly: {first + rest == everything}")
    answer = "".join(
        json.loads(data)["delta"] for _, data in first + rest if chunk_type(data) == "text-delta"
    )
    print(f"answer: {answer}")
    after = await client.get(resume)
    print(f"GET {resume} now: {after.status_code} (no active stream: the run has ended)")


def chunk_type(data: str) -> str:
    return "[DONE]" if data == "[DONE]" else json.loads(data)["type"]


def show(frame_id: str, data: str) -> None:
    if data == "[DONE]":
        print("         [DONE]")
        return
    chunk = json.loads(data)
    match chunk:
        case {"delta": delta}:
            detail = repr(delta)
        case {"type": "tool-input-available", "toolName": name, "input": args}:
            detail = f"{name} {json.dumps(args)}"
        case {"type": "tool-output-available", "output": output}:
            detail = json.dumps(output)
        case {"type": "data-state", "data": {"node": node}}:
            detail = f"(transient) node {node} returned"
        case {"type": "finish", "messageMetadata": {"usage": usage}}:
            detail = f"{usage['totalTokens']} tokens"
        case _:
            detail = ""
    print(f"  {frame_id:>5}  {chunk['type']:<22} {detail}")


if __name__ == "__main__":
    asyncio.run(serve_and_run(create_app({"forecaster": forecaster}), main))
