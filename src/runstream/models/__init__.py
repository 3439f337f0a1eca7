"""Chat models: the `ChatModel` protocol, chat messages, and `ScriptedModel`.

A [`ChatModel`][runstream.models.ChatModel] streams one assistant turn as
[`ModelChunk`][runstream.models.ModelChunk]s: text deltas, thought deltas, tool
calls and token usage. [`generate`][runstream.models.generate] (what
`ctx.generate` calls) turns that stream into run events and returns the
assembled assistant [`Message`][runstream.models.Message].

[`ScriptedModel`][runstream.models.ScriptedModel] is the offline model: it plays
a fixed script, needs no key and no network, and is deterministic.

Example:
    ```python
    model = rs.ScriptedModel(
        [
            rs.Turn(thought="I need the weather.", tool_calls=[("weather", {"city": "Oslo"})]),
            "It is sunny in Oslo.",
        ],
        delay=0.02,
    )
    ```
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias, runtime_checkable

import anyio
import attrs

from ..events import JSON, ToolCall

if TYPE_CHECKING:
    from ._openai import OpenAIChatModel

__all__ = [
    "ChatModel",
    "Message",
    "ModelChunk",
    "ModelError",
    "OpenAIChatModel",
    "Role",
    "ScriptExhausted",
    "ScriptedModel",
    "ToolSpec",
    "Turn",
    "generate",
]

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]
"""Who wrote a [`Message`][runstream.models.Message]."""

_ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


def _check_role(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in _ROLES:
        raise ValueError(f"Message role must be one of {', '.join(sorted(_ROLES))}, not {value!r}")


def _tool_calls_tuple(value: Iterable[ToolCall]) -> tuple[ToolCall, ...]:
    calls = tuple(value)
    for call in calls:
        if not isinstance(call, ToolCall):
            raise TypeError(f"Message.tool_calls holds ToolCall objects, not {call!r}")
    return calls


@attrs.frozen(slots=True)
class Message:
    """One chat message.

    Attributes:
        role: `"system"`, `"user"`, `"assistant"` or `"tool"`.
        content: the text (for a tool message: the tool's result, as text).
        tool_calls: the tools an assistant message asks to call.
        tool_call_id: for a tool message, the call it answers.

    Example:
        ```python
        rs.Message("user", "What is 2 + 3?")
        ```
    """

    role: Role = attrs.field(validator=_check_role)
    content: str
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_tool_calls_tuple)
    tool_call_id: str | None = None


@attrs.frozen(slots=True)
class ToolSpec:
    """What a model sees of a tool.

    Attributes:
        name: the name the model calls it by.
        description: what it does, for the model.
        parameters: the JSON Schema of its arguments (an object schema).
    """

    name: str
    description: str
    parameters: Mapping[str, JSON]


@attrs.frozen(slots=True, kw_only=True)
class ModelChunk:
    """One piece of a streamed model turn.

    A chunk may carry any of: a text delta (`text`), a reasoning delta
    (`thought`), complete tool calls (`tool_calls`), and token usage
    (`input_tokens`, `output_tokens`; the usage of a turn is the sum over its
    chunks). Empty fields mean "nothing of that kind in this chunk".
    """

    text: str = ""
    thought: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0


@runtime_checkable
class ChatModel(Protocol):
    """A chat model that streams one assistant turn per call.

    Attributes:
        name: the model's name, as reported in `Usage` events.
    """

    name: str

    def stream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ModelChunk]:
        """Stream the next assistant turn of the conversation `messages`."""
        ...


class ModelError(RuntimeError):
    """A model call failed: refused, cut off, or answered with something unreadable.

    A run whose model call raises it fails with `ErrorInfo(type="ModelError",
    retryable=...)`. The message names the model, the server and the
    provider's own error text; never the API key.

    Attributes:
        status: the HTTP status the server answered with, if any.
        retryable: whether trying again may succeed (a 429, a 5xx, a cut
            connection), as opposed to a request that will fail again
            (a bad key, an unknown model, a malformed request).
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def __getattr__(name: str) -> object:
    # OpenAIChatModel needs httpx (the openai extra): imported only when asked for.
    if name == "OpenAIChatModel":
        try:
            from ._openai import OpenAIChatModel
        except ImportError as exc:
            raise ImportError(
                f'OpenAIChatModel needs httpx: pip install "runstream[openai]" ({exc})'
            ) from None
        return OpenAIChatModel
    raise AttributeError(f"module 'runstream.models' has no attribute {name!r}")


# --- ScriptedModel ----------------------------------------------------------------


def _check_tool_call(item: object) -> ToolCall | tuple[str, dict[str, JSON]]:
    if isinstance(item, ToolCall):
        return item
    if (
        isinstance(item, tuple | list)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], Mapping)
    ):
        return (item[0], dict(item[1]))
    raise TypeError(
        f"a scripted tool call is a ToolCall or a (name, args) pair with a str name "
        f"and a dict of args, not {item!r}"
    )


def _tool_call_specs(
    value: Iterable[object],
) -> tuple[ToolCall | tuple[str, dict[str, JSON]], ...]:
    if isinstance(value, str | bytes | Mapping):
        raise TypeError(f"Turn.tool_calls is a sequence of tool calls, not {value!r}")
    return tuple(_check_tool_call(item) for item in value)


def _check_str(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"Turn.{attribute.name} must be a str, not {value!r}")


@attrs.frozen(slots=True)
class Turn:
    """One scripted assistant turn of a [`ScriptedModel`][runstream.models.ScriptedModel].

    Attributes:
        text: the reply text.
        thought: reasoning, streamed before the text as `PlannerThought`.
        tool_calls: `ToolCall`s or `(name, args)` pairs. A pair gets a fresh
            `call_<hex>` id every time the turn is played, so concurrent runs
            never share tool call ids; a `ToolCall` keeps the id you gave it.
    """

    text: str = attrs.field(default="", validator=_check_str)
    thought: str = attrs.field(default="", validator=_check_str)
    tool_calls: tuple[ToolCall | tuple[str, dict[str, JSON]], ...] = attrs.field(
        default=(), converter=_tool_call_specs
    )

    def calls(self) -> tuple[ToolCall, ...]:
        """The turn's tool calls as `ToolCall`s, pairs with fresh ids."""
        return tuple(
            c if isinstance(c, ToolCall) else ToolCall(f"call_{uuid.uuid4().hex}", c[0], c[1])
            for c in self.tool_calls
        )


class ScriptExhausted(RuntimeError):
    """A [`ScriptedModel`][runstream.models.ScriptedModel] was asked for more turns than it has."""


_WORDS = re.compile(r"\s*\S+\s*")


def _word_chunks(text: str) -> list[str]:
    """Split `text` into words, each with the whitespace around it kept.

    The concatenation of the pieces is `text` exactly.
    """
    pieces = _WORDS.findall(text)
    return pieces or ([text] if text else [])


def _count_words(text: str) -> int:
    return len(text.split())


class ScriptedModel:
    """A chat model that plays a fixed script: offline, deterministic, keyless.

    Each call of `stream` plays one turn: the turn whose index is the number of
    assistant messages already in the conversation. The model keeps no state,
    so one instance serves any number of runs at once.

    A turn streams its thought, then its text, in word-sized chunks (whitespace
    kept, so the chunks join back to the exact text) with `delay` seconds
    between chunks; then its tool calls, then one usage chunk (input tokens:
    the words of the conversation; output tokens: the words of the turn, at
    least 1).

    Args:
        turns: the script: `Turn`s, or strings for text-only turns.
        delay: seconds to wait between chunks, to look like a real model.
        name: the model's name in `Usage` events.

    Raises:
        TypeError: `turns` holds something that is not a `Turn` or a `str`.
        ValueError: `delay` is negative.

    Example:
        ```python
        model = rs.ScriptedModel([rs.Turn(tool_calls=[("add", {"a": 2, "b": 3})]), "It is 5."])
        ```
    """

    def __init__(
        self, turns: Sequence[Turn | str], *, delay: float = 0.0, name: str = "scripted"
    ) -> None:
        if isinstance(turns, str | bytes) or not isinstance(turns, Iterable):
            raise TypeError(
                f"ScriptedModel takes a sequence of turns (Turn or str), not {turns!r}; "
                "wrap a single turn in a list"
            )
        script: list[Turn] = []
        for i, turn in enumerate(turns):
            if isinstance(turn, str):
                script.append(Turn(text=turn))
            elif isinstance(turn, Turn):
                script.append(turn)
            else:
                raise TypeError(f"ScriptedModel turn {i} must be a Turn or a str, not {turn!r}")
        if delay < 0:
            raise ValueError(f"ScriptedModel delay must be >= 0, not {delay!r}")
        self.turns: tuple[Turn, ...] = tuple(script)
        self.delay = float(delay)
        self.name = name

    def __repr__(self) -> str:
        return f"ScriptedModel({len(self.turns)} turns, delay={self.delay}, name={self.name!r})"

    async def stream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ModelChunk]:
        """Stream the scripted turn for the conversation `messages`.

        Raises:
            ScriptExhausted: the conversation already has as many assistant
                messages as the script has turns.
        """
        index = sum(1 for m in messages if m.role == "assistant")
        if index >= len(self.turns):
            raise ScriptExhausted(
                f"ScriptedModel {self.name!r} ran out of script: turn {index + 1} asked for, "
                f"{len(self.turns)} scripted"
            )
        turn = self.turns[index]
        chunks = [ModelChunk(thought=w) for w in _word_chunks(turn.thought)]
        chunks += [ModelChunk(text=w) for w in _word_chunks(turn.text)]
        chunks += [ModelChunk(tool_calls=(call,)) for call in turn.calls()]
        chunks.append(
            ModelChunk(
                input_tokens=max(1, sum(_count_words(m.content) for m in messages)),
                output_tokens=max(1, _count_words(turn.thought) + _count_words(turn.text)),
            )
        )
        for i, chunk in enumerate(chunks):
            if i and self.delay > 0:
                await anyio.sleep(self.delay)
            yield chunk


# --- generate ---------------------------------------------------------------------


class _MessageWriter(Protocol):
    async def write(self, delta: str, /) -> None: ...


class _GenerateContext(Protocol):
    """What [`generate`][runstream.models.generate] needs of a `RunContext`."""

    def stream_reply(self) -> AbstractAsyncContextManager[_MessageWriter]: ...

    def stream_thought(self) -> AbstractAsyncContextManager[_MessageWriter]: ...

    async def usage(self, model: str, input_tokens: int, output_tokens: int, /) -> None: ...


class _HasSpec(Protocol):
    @property
    def spec(self) -> ToolSpec: ...


def _spec_of(tool: ToolSpec | _HasSpec) -> ToolSpec:
    if isinstance(tool, ToolSpec):
        return tool
    spec = getattr(tool, "spec", None)
    if not isinstance(spec, ToolSpec):
        raise TypeError(f"tools must be Tool or ToolSpec objects, not {tool!r}")
    return spec


async def generate(
    ctx: _GenerateContext,
    model: ChatModel,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec | _HasSpec] = (),
) -> Message:
    """Stream one model turn into run events and return the assistant message.

    Text deltas become one streamed `AssistantReply` message and thought deltas
    one streamed `PlannerThought` message; each is opened on its first delta
    (a turn without text emits no reply events) and the thought message is
    closed when the text begins. Usage is summed into one `Usage` event at the
    end. This is what `ctx.generate(model, messages, tools)` runs.

    Args:
        ctx: the node's `RunContext`.
        model: the chat model to call.
        messages: the conversation so far.
        tools: `Tool`s or `ToolSpec`s the model may call.

    Returns:
        `Message(role="assistant", content=<all text>, tool_calls=<all calls>)`.
    """
    specs = tuple(_spec_of(t) for t in tools)
    text: list[str] = []
    calls: list[ToolCall] = []
    input_tokens = output_tokens = 0
    saw_usage = False
    async with AsyncExitStack() as streams:
        reply: _MessageWriter | None = None
        thoughts: AsyncExitStack | None = None
        thought: _MessageWriter | None = None
        async for chunk in model.stream(messages, tools=specs):
            if chunk.thought:
                if thought is None:
                    thoughts = await streams.enter_async_context(AsyncExitStack())
                    thought = await thoughts.enter_async_context(ctx.stream_thought())
                await thought.write(chunk.thought)
            if chunk.text:
                if thoughts is not None:
                    # The reasoning is over once the answer starts: mark it done now.
                    await thoughts.aclose()
                    thoughts = thought = None
                if reply is None:
                    reply = await streams.enter_async_context(ctx.stream_reply())
                await reply.write(chunk.text)
                text.append(chunk.text)
            calls.extend(chunk.tool_calls)
            if chunk.input_tokens or chunk.output_tokens:
                saw_usage = True
                input_tokens += chunk.input_tokens
                output_tokens += chunk.output_tokens
    if saw_usage:
        await ctx.usage(model.name, input_tokens, output_tokens)
    return Message(role="assistant", content="".join(text), tool_calls=tuple(calls))
