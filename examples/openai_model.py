"""An agent on a real model server: anything that speaks OpenAI chat completions.

Point it at your server with environment variables, e.g. Ollama:

    OPENAI_BASE_URL=http://127.0.0.1:11434/v1 OPENAI_MODEL=qwen3:8b python examples/openai_model.py

or OpenAI itself (OPENAI_API_KEY=sk-... OPENAI_MODEL=gpt-4o-mini). With no
OPENAI_BASE_URL set, it starts a stand-in on loopback that streams one tool
call, then a canned answer, in the chat-completions format, so the example
runs anywhere (`pip install "runstream[openai]"`).
"""

from __future__ import annotations

import asyncio
import json
import os

import runstream as rs


@rs.tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny and 21 C in {city}"


async def main(base_url: str, model_name: str) -> None:
    model = rs.OpenAIChatModel(model_name, base_url=base_url)
    agent = rs.create_agent(model, tools=[weather], name="forecaster")
    try:
        async for event in agent.run("What is the weather in Oslo?"):
            match event:
                case rs.ToolStart(tool_name=name, payload=args):
                    print(f"[{name} {json.dumps(args)}]")
                case rs.ToolEnd(result=result):
                    print(f"[-> {result}]")
                case rs.AssistantReply(text=text, done=done, parent_run_id=None):
                    print(text, end="\n" if done else "", flush=True)
                case rs.Usage(model=name, input_tokens=i, output_tokens=o):
                    print(f"[{name}: {i} tokens in, {o} out]")
    finally:
        await model.aclose()


# --- the stand-in server (only when no OPENAI_BASE_URL is set) ----------------------


def _sse(*deltas: dict[str, object], finish: str, usage: tuple[int, int]) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append(
        {"choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}}
    )
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


_CALL = {"index": 0, "id": "call_1", "type": "function"}
_TURNS = [
    _sse(
        {"tool_calls": [{**_CALL, "function": {"name": "weather", "arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]},
        finish="tool_calls",
        usage=(60, 12),
    ),
    _sse(
        *({"content": word} for word in ["It is ", "sunny ", "and 21 C ", "in Oslo."]),
        finish="stop",
        usage=(90, 9),
    ),
]


async def _stand_in(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one POST /v1/chat/completions: the turn after the assistant turns so far."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    body = json.loads(await reader.readexactly(length))
    turn = sum(m["role"] == "assistant" for m in body["messages"])
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
    writer.write(_TURNS[turn])
    await writer.drain()
    writer.close()


async def with_stand_in() -> None:
    server = await asyncio.start_server(_stand_in, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"(no OPENAI_BASE_URL: a stand-in server on 127.0.0.1:{port})")
    async with server:
        await main(f"http://127.0.0.1:{port}/v1", "stand-in")


if __name__ == "__main__":
    if os.environ.get("OPENAI_BASE_URL"):
        asyncio.run(
            main(os.environ["OPENAI_BASE_URL"], os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
        )
    else:
        asyncio.run(with_stand_in())
