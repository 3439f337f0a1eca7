"""Tokens end to end from a model server: a 2,000-word reply, every token to a consumer.

A local server (a child process, raw asyncio, no framework) answers every
`POST /v1/chat/completions` with the same pre-built `stream: true` response
as fast as it can: one chunk per word ("w17 "), then `finish_reason`, a usage
chunk and `[DONE]`, in one write. The same bytes for every contender, read
over loopback by:

- floor: a bare httpx loop: `client.stream("POST", ...)`, `aiter_lines()`,
  `json.loads` of each `data:` line, the delta's content appended: what
  anyone writes to read the stream by hand;
- runstream: `rs.create_agent(rs.OpenAIChatModel(..., base_url=...))`, read by
  `async for event in app.run("hi")`, counting `AssistantReply` text;
- openai-agents: an `Agent` on `OpenAIChatCompletionsModel` with an
  `AsyncOpenAI(base_url=...)` client, `Runner.run_streamed`, counting the raw
  text delta events; tracing disabled;
- pydantic-ai: an `Agent` on its `OpenAIChatModel` with an
  `OpenAIProvider(base_url=...)`, `run_stream` and `stream_text(delta=True,
  debounce_by=None)`.

Every consumer checks that the deltas join back to the reply. Clocks and
rounds as in `_common.py` (this process's CPU time: the server's is apart).

    python benchmarks/model_tokens.py [--words 2000] [--replies 3] [--rounds 7]
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from _common import (
    Contender,
    header,
    parser,
    run_rounds,
)
from tokens import add_peers, checked, repeat, reply_text, report, word_chunks

import runstream as rs

FLOOR = "floor: bare httpx SSE loop"
RUNSTREAM = "runstream: OpenAIChatModel, create_agent, async for"

_SERVER = textwrap.dedent(
    """
    import asyncio, json, sys

    def body(words):
        out = []
        for word in words:
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "bench",
                     "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            out.append("data: " + json.dumps(chunk) + "\\n\\n")
        end = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "bench",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        usage = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "bench",
                 "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": len(words),
                 "total_tokens": 9 + len(words)}}
        out += ["data: " + json.dumps(end) + "\\n\\n", "data: " + json.dumps(usage) + "\\n\\n",
                "data: [DONE]\\n\\n"]
        return "".join(out).encode()

    BODY = body(json.loads(sys.stdin.read()))
    HEAD = (b"HTTP/1.1 200 OK\\r\\ncontent-type: text/event-stream\\r\\n"
            b"connection: close\\r\\n\\r\\n")

    async def answer(reader, writer):
        head = await reader.readuntil(b"\\r\\n\\r\\n")
        for line in head.split(b"\\r\\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        writer.write(HEAD + BODY)
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    """
)


@contextmanager
def model_server(chunks: list[str]) -> Iterator[str]:
    """The server in a child process; yields its base URL (…/v1)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(json.dumps(chunks))
    proc.stdin.close()
    port = int(proc.stdout.readline())
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def floor_contender(url: str, text: str, replies: int) -> Contender:
    body = {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    async def one() -> int:
        parts: list[str] = []
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("POST", url + "/chat/completions", json=body) as response,
        ):
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[6:])["choices"]:
                    content = choice["delta"].get("content")
                    if content:
                        parts.append(content)
        return checked(parts, text, "floor")

    return repeat(replies, one)


def runstream_contender(url: str, text: str, replies: int) -> Contender:
    async def one() -> int:
        model = rs.OpenAIChatModel("bench", base_url=url, api_key="bench")
        app = rs.create_agent(model)
        parts: list[str] = []
        try:
            async for event in app.run("hi"):
                if type(event) is rs.AssistantReply and event.text:
                    parts.append(event.text)
        finally:
            await model.aclose()
        return checked(parts, text, "runstream")

    return repeat(replies, one)


def openai_agents_contenders(url: str, text: str, replies: int) -> dict[str, Contender]:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
    from openai import AsyncOpenAI
    from openai.types.responses import ResponseTextDeltaEvent

    set_tracing_disabled(True)

    async def one() -> int:
        client = AsyncOpenAI(base_url=url, api_key="bench")
        agent = Agent(
            name="bench", model=OpenAIChatCompletionsModel(model="bench", openai_client=client)
        )
        parts: list[str] = []
        result = Runner.run_streamed(agent, "hi")
        async for event in result.stream_events():
            if event.type == "raw_response_event" and isinstance(
                event.data, ResponseTextDeltaEvent
            ):
                parts.append(event.data.delta)
        await client.close()
        return checked(parts, text, "openai-agents")

    return {"openai-agents: Runner.run_streamed": repeat(replies, one)}


def pydantic_ai_contenders(url: str, text: str, replies: int) -> dict[str, Contender]:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    async def one() -> int:
        provider = OpenAIProvider(base_url=url, api_key="bench")
        agent = Agent(OpenAIChatModel("bench", provider=provider))
        parts: list[str] = []
        async with agent.run_stream("hi") as result:
            async for delta in result.stream_text(delta=True, debounce_by=None):
                parts.append(delta)
        await provider.client.close()
        return checked(parts, text, "pydantic-ai")

    return {"pydantic-ai: run_stream, stream_text": repeat(replies, one)}


PEERS: dict[str, tuple[tuple[str, ...], Callable[[str, str, int], dict[str, Contender]]]] = {
    "openai-agents": (("openai-agents",), openai_agents_contenders),
    "pydantic-ai": (("pydantic-ai-slim", "openai"), pydantic_ai_contenders),
}


def main() -> None:
    p = parser(__doc__, events=None, rounds=7)
    p.add_argument("--words", type=int, default=2000, help="words in the reply, default 2,000")
    p.add_argument("--replies", type=int, default=3, help="replies per case, default 3")
    args = p.parse_args()
    text = reply_text(args.words)
    chunks = word_chunks(text)
    n = len(chunks) * args.replies
    header("httpx", "openai-agents", "openai", "pydantic-ai-slim")
    with model_server(chunks) as url:
        contenders: dict[str, Any] = {
            FLOOR: floor_contender(url, text, args.replies),
            RUNSTREAM: runstream_contender(url, text, args.replies),
        }
        skipped = add_peers(contenders, PEERS, url, text, args.replies)
        seconds = run_rounds(contenders, n, args.rounds, seed=args.seed)
    print(
        f"{args.replies} replies of {args.words:,} words ({len(chunks):,} chunks) per case,"
        f" {n:,} tokens; median of {args.rounds} rounds"
    )
    report(
        seconds,
        n,
        RUNSTREAM,
        FLOOR,
        skipped,
        floor_label="the floor (target >= 0.5x)",
        peer_target=" (target > 1x)",
    )


if __name__ == "__main__":
    main()
