"""A local server that speaks OpenAI chat completions (`stream: true`), scripted.

Each request takes the next item of the script: a `Stream` (SSE text sent as
is, optionally cut off: the connection dropped mid-response) or a `Refuse`
(an HTTP error with a body and headers). Requests are recorded (body and
headers), so tests check what the model sent. It is a real HTTP server on
loopback (`serving`), not a mock transport.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from _support.serving import serving

FIXTURES = Path(__file__).resolve().parents[1] / "models" / "fixtures"


@dataclass
class Stream:
    """An SSE response: `text` sent in pieces of `piece` bytes; `cut` drops the
    connection after that many bytes instead of finishing."""

    text: str
    cut: int | None = None
    piece: int = 64


@dataclass
class Refuse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _Cut(Exception):
    """Raised inside the response body: uvicorn drops the connection."""


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def sse(*chunks: Any, done: bool = True) -> str:
    """SSE text of `chunks` (objects or raw strings), then `[DONE]`."""
    out = [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks]
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out)


def text_turn(*pieces: str, usage: tuple[int, int] = (10, 5)) -> str:
    """An OpenAI-style text turn: one delta per piece, finish, usage, `[DONE]`."""
    base = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    chunks: list[Any] = [
        {**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
        for p in pieces
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append(
        {**base, "choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}}
    )
    return sse(*chunks)


def tool_turn(*calls: tuple[str, str, str]) -> str:
    """An OpenAI-style turn of tool calls `(id, name, arguments text)`, split in two fragments."""
    base = {"id": "c2", "object": "chat.completion.chunk", "model": "m"}

    def delta(fragment: dict[str, Any]) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": {"tool_calls": [fragment]}, "finish_reason": None}],
        }

    chunks: list[Any] = []
    for i, (call_id, name, _) in enumerate(calls):
        chunks.append(
            delta(
                {
                    "index": i,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
            )
        )
    for half in (0, 1):
        for i, (_, _, arguments) in enumerate(calls):
            middle = len(arguments) // 2
            part = arguments[:middle] if half == 0 else arguments[middle:]
            chunks.append(delta({"index": i, "function": {"arguments": part}}))
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 8}})
    return sse(*chunks)


class ChatServer:
    """The scripted server; `requests` holds what it was sent."""

    def __init__(self, script: Sequence[Stream | Refuse]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""

    def app(self) -> Starlette:
        async def completions(request: Request) -> Response:
            self.requests.append(await request.json())
            self.headers.append(dict(request.headers))
            if not self.script:
                return JSONResponse({"error": {"message": "the test's script ran out"}}, 500)
            item = self.script.pop(0)
            if isinstance(item, Refuse):
                body = item.body if item.body is not None else {"error": {"message": "refused"}}
                if isinstance(body, str):
                    return Response(body, item.status, headers=item.headers)
                return JSONResponse(body, item.status, headers=item.headers)
            return StreamingResponse(_pieces(item), media_type="text/event-stream")

        return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


async def _pieces(item: Stream) -> AsyncIterator[bytes]:
    data = item.text.encode()
    end = len(data) if item.cut is None else item.cut
    for start in range(0, end, item.piece):
        yield data[start : min(end, start + item.piece)]
    if item.cut is not None:
        raise _Cut("the test cuts the connection here")


@asynccontextmanager
async def chat_server(*script: Stream | Refuse) -> AsyncIterator[ChatServer]:
    """Serve the script on loopback; `server.url` is the base URL to give the model (…/v1)."""
    server = ChatServer(script)
    async with serving(server.app()) as url:
        server.url = url + "/v1"
        yield server
