"""`OpenAIChatModel`: any server that speaks OpenAI chat completions with `stream: true`.

Needs httpx (the `openai` extra); it does not use the `openai` package.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from ..events import ToolCall
from . import Message, ModelChunk, ModelError, ToolSpec

__all__ = ["OpenAIChatModel"]

_RETRIED = frozenset({408, 409, 429, 500, 502, 503, 504})
_BACKOFF = 0.5  # seconds before the first retry; doubled each time, with jitter
_MAX_WAIT = 30.0  # the longest pause between tries, Retry-After included


class OpenAIChatModel:
    """A chat model behind the OpenAI chat-completions API, streamed.

    Works with any server that speaks it: OpenAI, vLLM, Ollama, llama.cpp,
    LM Studio, DeepSeek, OpenRouter. Streams text deltas, reasoning deltas
    (`reasoning_content`, as DeepSeek and llama.cpp send them, or
    `reasoning`, as vLLM does), tool calls (assembled from their fragments by
    `index`) and token usage (asked for with `stream_options.include_usage`).

    A connection error, a 408/409/429 or a 5xx before the first chunk is
    tried again up to `max_retries` times, after a growing pause (a
    `Retry-After` header is honoured, up to 30 s). Other errors are not
    retried. Every failure raises `ModelError` with the provider's message
    and the HTTP status; the API key never appears in one.

    Args:
        model: the model's name on the server, e.g. `"gpt-4o-mini"`.
        base_url: the API's base URL, e.g. `"http://127.0.0.1:8000/v1"`
            (default: `OPENAI_BASE_URL`, else `https://api.openai.com/v1`).
        api_key: sent as a bearer token (default: `OPENAI_API_KEY`; none
            when neither is set, as local servers need none).
        timeout: seconds to wait for the connection and for each read.
        max_retries: tries after the first, before the first chunk only.
        extra_body: more fields for every request body (e.g. `temperature`).
        client: an `httpx.AsyncClient` to use (its owner closes it);
            default: one of this model's own, closed by `aclose()`.

    Raises:
        ValueError: an empty model name, or a negative timeout or retry count.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        extra_body: Mapping[str, Any] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty name, got {model!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        self.name = model
        base = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.base_url = base.rstrip("/")
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout
        self.max_retries = max_retries
        self.extra_body = dict(extra_body or {})
        self._own_client = client is None
        self._client = client

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.name!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the HTTP client this model made (not one it was given)."""
        if self._own_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    def request_body(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()
    ) -> dict[str, Any]:
        """The JSON body `stream` posts for `messages` and `tools`."""
        body: dict[str, Any] = {
            "model": self.name,
            "messages": [_wire_message(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                    },
                }
                for t in tools
            ]
        body.update(self.extra_body)
        return body

    async def stream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ModelChunk]:
        """Stream the next assistant turn of `messages`.

        Raises:
            ModelError: the server refused the request, sent an error, cut the
                connection or sent something that is not a chunk.
        """
        body = self.request_body(messages, tools)
        response = await self._open(body)
        try:
            async for chunk in _chunks(self, response):
                yield chunk
        finally:
            await response.aclose()

    async def _open(self, body: dict[str, Any]) -> httpx.Response:
        """POST the request; the streaming response once its status is 200."""
        url = f"{self.base_url}/chat/completions"
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        client = self._http()
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                request = client.build_request("POST", url, json=body, headers=headers)
                response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                if last:
                    raise ModelError(
                        f"{self.name} at {self.base_url}: cannot reach the server "
                        f"({type(exc).__name__}: {exc})",
                        retryable=True,
                    ) from None
                await asyncio.sleep(_pause(attempt, None))
                continue
            if response.status_code == 200:
                return response
            text = (await response.aread()).decode("utf-8", "replace")
            await response.aclose()
            error = ModelError(
                f"{self.name} at {self.base_url}: HTTP {response.status_code}: "
                f"{_provider_message(text)}",
                status=response.status_code,
                retryable=response.status_code in _RETRIED,
            )
            if last or response.status_code not in _RETRIED:
                raise error
            await asyncio.sleep(_pause(attempt, response.headers.get("retry-after")))
        raise AssertionError("unreachable")  # pragma: no cover


def _pause(attempt: int, retry_after: str | None) -> float:
    """Seconds before try `attempt + 1`: the server's `Retry-After`, else backoff."""
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), _MAX_WAIT)
        except ValueError:
            pass  # an HTTP date: fall back to backoff
    return min(_BACKOFF * 2.0**attempt * (0.75 + random.random() / 2), _MAX_WAIT)


def _provider_message(text: str) -> str:
    """The provider's error message out of an error body (JSON or not)."""
    try:
        found = json.loads(text)
    except ValueError:
        return text.strip()[:500] or "(no body)"
    if isinstance(found, dict):
        error = found.get("error", found)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(found.get("detail"), str):
            return str(found["detail"])
    return text.strip()[:500]


def _wire_message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.tool_call_id,
                "type": "function",
                "function": {
                    "name": call.tool_name,
                    "arguments": call.payload
                    if isinstance(call.payload, str)
                    else json.dumps(call.payload, ensure_ascii=False),
                },
            }
            for call in message.tool_calls
        ]
        if not message.content:
            out["content"] = None
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


class _Call:
    """A tool call being assembled from its fragments."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    def done(self, index: int) -> ToolCall:
        text = "".join(self.arguments)
        try:
            payload = json.loads(text) if text.strip() else {}
        except ValueError:
            payload = text  # not JSON: the tool's validation tells the model so
        return ToolCall(self.id or f"call_{index}_{uuid.uuid4().hex[:12]}", self.name, payload)


async def _chunks(model: OpenAIChatModel, response: httpx.Response) -> AsyncIterator[ModelChunk]:
    """The response's SSE `data:` objects as `ModelChunk`s; tool calls at the end."""
    where = f"{model.name} at {model.base_url}"
    calls: dict[int, _Call] = {}
    finished = done = False
    data: list[str] = []
    lines = response.aiter_lines()
    while True:
        try:
            line = await anext(lines)
        except StopAsyncIteration:
            break
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise ModelError(
                f"{where}: the connection was cut mid-stream ({type(exc).__name__})",
                retryable=True,
            ) from None
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
            continue
        if line or not data:
            continue  # a comment, an event/id field, or a blank line between events
        text, data = "\n".join(data), []
        if text.strip() == "[DONE]":
            done = True
            break
        try:
            obj = json.loads(text)
        except ValueError:
            raise ModelError(f"{where}: a chunk that is not JSON: {text[:200]!r}") from None
        if not isinstance(obj, dict):
            raise ModelError(f"{where}: a chunk that is not an object: {text[:200]!r}")
        if "error" in obj:
            error = obj["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise ModelError(f"{where}: error mid-stream: {message}", retryable=True)
        chunk, ended = _read_chunk(obj, calls, where)
        finished = finished or ended
        if chunk is not None:
            yield chunk
    if data and not done:  # the last event had no blank line after it
        done = "\n".join(data).strip() == "[DONE]"
    if not done and not finished:
        raise ModelError(
            f"{where}: the stream ended before the turn did (no finish_reason, no [DONE])",
            retryable=True,
        )
    if calls:
        yield ModelChunk(tool_calls=tuple(calls[i].done(i) for i in sorted(calls)))


def _read_chunk(
    obj: dict[str, Any], calls: dict[int, _Call], where: str
) -> tuple[ModelChunk | None, bool]:
    """One chunk object: what it adds (text, thought, usage) and whether its turn ended."""
    text = thought = ""
    ended = False
    choices = obj.get("choices") or []
    if not isinstance(choices, list):
        raise ModelError(f"{where}: 'choices' is not a list: {choices!r:.200}")
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue  # n > 1 is not asked for; the first choice is the turn
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise ModelError(f"{where}: 'delta' is not an object: {delta!r:.200}")
        text += delta.get("content") or ""
        thought += delta.get("reasoning_content") or delta.get("reasoning") or ""
        for fragment in delta.get("tool_calls") or ():
            _add_fragment(fragment, calls, where)
        ended = ended or bool(choice.get("finish_reason"))
    usage = obj.get("usage")
    input_tokens = output_tokens = 0
    if isinstance(usage, dict):
        input_tokens = int(usage.get("prompt_tokens") or 0)
        output_tokens = int(usage.get("completion_tokens") or 0)
    if not (text or thought or input_tokens or output_tokens):
        return None, ended
    chunk = ModelChunk(
        text=text, thought=thought, input_tokens=input_tokens, output_tokens=output_tokens
    )
    return chunk, ended


def _add_fragment(fragment: object, calls: dict[int, _Call], where: str) -> None:
    if not isinstance(fragment, dict):
        raise ModelError(f"{where}: a tool call fragment that is not an object: {fragment!r:.200}")
    index = fragment.get("index", len(calls))
    if not isinstance(index, int):
        raise ModelError(f"{where}: a tool call fragment with index {index!r}")
    call = calls.setdefault(index, _Call())
    if fragment.get("id"):
        call.id = str(fragment["id"])
    function = fragment.get("function") or {}
    if isinstance(function, dict):
        if function.get("name") and not call.name:  # sent once, or repeated: never twice
            call.name = str(function["name"])
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.arguments.append(arguments)
        elif arguments is not None:  # some servers send the arguments as an object
            call.arguments.append(json.dumps(arguments))
