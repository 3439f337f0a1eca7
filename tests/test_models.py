from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from runstream.events import ToolCall
from runstream.models import (
    ChatModel,
    Message,
    ModelChunk,
    ScriptedModel,
    ScriptExhausted,
    ToolSpec,
    Turn,
    generate,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def collect(model: ChatModel, messages: Sequence[Message]) -> list[ModelChunk]:
    return [chunk async for chunk in model.stream(messages)]


USER = [Message("user", "What is two plus three?")]


# --- Message, Turn --------------------------------------------------------------


def test_message_is_positional_and_frozen() -> None:
    m = Message("user", "hi")
    assert (m.role, m.content, m.tool_calls, m.tool_call_id) == ("user", "hi", (), None)
    with pytest.raises(AttributeError):
        m.content = "bye"  # type: ignore[misc]


def test_message_rejects_unknown_role() -> None:
    with pytest.raises(ValueError, match="role"):
        Message("robot", "hi")  # type: ignore[arg-type]


def test_message_tool_calls_become_a_tuple() -> None:
    call = ToolCall("c1", "add", {"a": 1})
    m = Message("assistant", "", tool_calls=[call])
    assert m.tool_calls == (call,)


def test_turn_pairs_get_fresh_ids_every_time_played() -> None:
    turn = Turn(tool_calls=[("add", {"a": 1, "b": 2})])
    first, second = turn.calls(), turn.calls()
    assert first[0].tool_name == "add"
    assert first[0].payload == {"a": 1, "b": 2}
    assert re.fullmatch(r"call_[0-9a-f]{32}", first[0].tool_call_id)
    assert first[0].tool_call_id != second[0].tool_call_id


def test_turn_keeps_the_id_of_an_explicit_tool_call() -> None:
    call = ToolCall("mine", "add", {"a": 1})
    assert Turn(tool_calls=[call]).calls() == (call,)


@pytest.mark.parametrize(
    "bad",
    [
        [("add",)],
        [("add", "not a dict")],
        [(3, {})],
        ["add"],
        [{"name": "add", "args": {}}],
    ],
)
def test_turn_rejects_malformed_tool_calls(bad: list[object]) -> None:
    with pytest.raises(TypeError, match="ToolCall or a \\(name, args\\) pair"):
        Turn(tool_calls=bad)


def test_turn_rejects_non_str_text() -> None:
    with pytest.raises(TypeError, match=r"Turn\.text"):
        Turn(text=3)  # type: ignore[arg-type]


# --- ScriptedModel --------------------------------------------------------------


def test_scripted_model_is_a_chat_model() -> None:
    assert isinstance(ScriptedModel(["hi"]), ChatModel)


@pytest.mark.parametrize("bad", [[3], [None], [Message("assistant", "hi")]])
def test_scripted_model_rejects_bad_turns(bad: list[object]) -> None:
    with pytest.raises(TypeError, match="turn 0 must be a Turn or a str"):
        ScriptedModel(bad)  # type: ignore[arg-type]


def test_scripted_model_rejects_a_bare_string_script() -> None:
    with pytest.raises(TypeError, match="wrap a single turn in a list"):
        ScriptedModel("hello there")


def test_scripted_model_rejects_negative_delay() -> None:
    with pytest.raises(ValueError, match="delay"):
        ScriptedModel(["hi"], delay=-1)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "text",
    [
        "It is five.",
        "  leading and trailing  ",
        "tabs\tand\nnewlines\n\n",
        "one",
        "   ",
    ],
)
async def test_text_chunks_are_words_that_join_to_the_text(text: str) -> None:
    chunks = await collect(ScriptedModel([text]), USER)
    texts = [c.text for c in chunks if c.text]
    assert "".join(texts) == text
    for piece in texts:
        assert len(piece.split()) <= 1  # one word (with its whitespace) per chunk
    assert len(texts) == max(1, len(text.split()))


@pytest.mark.anyio
async def test_turn_streams_thought_then_text_then_tool_calls_then_usage() -> None:
    model = ScriptedModel(
        [Turn(text="Adding now.", thought="I should add.", tool_calls=[("add", {"a": 2})])]
    )
    chunks = await collect(model, USER)
    kinds = [
        "thought" if c.thought else "text" if c.text else "calls" if c.tool_calls else "usage"
        for c in chunks
    ]
    assert kinds == ["thought"] * 3 + ["text"] * 2 + ["calls", "usage"]
    assert "".join(c.thought for c in chunks) == "I should add."
    usage = chunks[-1]
    assert usage.input_tokens == len("What is two plus three?".split())
    assert usage.output_tokens == 5  # 3 thought words + 2 text words


@pytest.mark.anyio
async def test_tool_only_turn_reports_at_least_one_output_token() -> None:
    chunks = await collect(ScriptedModel([Turn(tool_calls=[("add", {})])]), USER)
    assert [c.text for c in chunks] == ["", ""]
    assert chunks[-1].output_tokens == 1


@pytest.mark.anyio
async def test_delay_is_slept_between_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    chunks = await collect(ScriptedModel(["one two three"], delay=0.25), USER)
    assert len(chunks) == 4  # three words and the usage
    assert slept == [0.25] * 3


@pytest.mark.anyio
async def test_no_sleep_without_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    await collect(ScriptedModel(["one two three"]), USER)
    assert slept == []


@pytest.mark.anyio
async def test_turn_played_is_chosen_by_assistant_messages_in_the_conversation() -> None:
    model = ScriptedModel(["first answer", "second answer"])
    history = [*USER, Message("assistant", "first answer"), Message("user", "and?")]

    async def text_of(messages: list[Message]) -> str:
        return "".join(c.text for c in await collect(model, messages))

    # One instance, two conversations, interleaved: no state is kept between calls.
    assert await text_of(history) == "second answer"
    assert await text_of(USER) == "first answer"
    assert await text_of(history) == "second answer"


@pytest.mark.anyio
async def test_concurrent_conversations_share_one_instance() -> None:
    model = ScriptedModel([Turn(tool_calls=[("add", {"a": 1})]), "done"])
    results: dict[int, list[ModelChunk]] = {}

    async def run(i: int) -> None:
        results[i] = await collect(model, USER)

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(run, i)
    ids = {c.tool_calls[0].tool_call_id for chunks in results.values() for c in chunks[:-1]}
    assert len(ids) == 3


@pytest.mark.anyio
async def test_running_out_of_script_says_so() -> None:
    model = ScriptedModel(["a", "b"])
    conversation = [*USER, Message("assistant", "a"), Message("assistant", "b")]
    with pytest.raises(ScriptExhausted) as info:
        await collect(model, conversation)
    assert isinstance(info.value, RuntimeError)
    assert str(info.value) == (
        "ScriptedModel 'scripted' ran out of script: turn 3 asked for, 2 scripted"
    )


# --- generate ---------------------------------------------------------------------


class FakeContext:
    """Records what `generate` asks a RunContext to emit."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self._ids = 0

    def _stream(self, kind: str) -> Any:
        @asynccontextmanager
        async def cm() -> AsyncIterator[Any]:
            self._ids += 1
            mid = f"{kind}{self._ids}"
            log = self.log

            class Writer:
                message_id = mid

                async def write(self, delta: str) -> None:
                    log.append((kind, mid, delta))

            yield Writer()
            log.append((kind, mid, "<done>"))

        return cm()

    def stream_reply(self) -> Any:
        return self._stream("reply")

    def stream_thought(self) -> Any:
        return self._stream("thought")

    async def usage(self, model: str, input_tokens: int, output_tokens: int) -> None:
        self.log.append(("usage", model, input_tokens, output_tokens))


@pytest.mark.anyio
async def test_generate_streams_thought_then_reply_and_sums_usage() -> None:
    ctx = FakeContext()
    model = ScriptedModel([Turn(thought="Hmm ok", text="It is 5.")], name="m1")
    message = await generate(ctx, model, USER)
    assert message == Message("assistant", "It is 5.")
    assert ctx.log == [
        ("thought", "thought1", "Hmm "),
        ("thought", "thought1", "ok"),
        ("thought", "thought1", "<done>"),
        ("reply", "reply2", "It "),
        ("reply", "reply2", "is "),
        ("reply", "reply2", "5."),
        ("reply", "reply2", "<done>"),
        ("usage", "m1", 5, 5),
    ]


@pytest.mark.anyio
async def test_generate_without_text_emits_no_reply() -> None:
    ctx = FakeContext()
    model = ScriptedModel([Turn(tool_calls=[ToolCall("c1", "add", {"a": 1})])])
    message = await generate(ctx, model, USER)
    assert message == Message("assistant", "", tool_calls=(ToolCall("c1", "add", {"a": 1}),))
    assert [entry[0] for entry in ctx.log] == ["usage"]


class RecordingModel:
    """A ChatModel that reports the tools it was given and streams canned chunks."""

    name = "recording"

    def __init__(self, chunks: list[ModelChunk]) -> None:
        self.chunks = chunks
        self.tools: Sequence[ToolSpec] = ()

    async def stream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[ModelChunk]:
        self.tools = tools
        for chunk in self.chunks:
            yield chunk


@pytest.mark.anyio
async def test_generate_passes_tool_specs_and_sums_several_usage_chunks() -> None:
    spec = ToolSpec("add", "Add numbers.", {"type": "object", "properties": {}})

    class HasSpec:
        def __init__(self, spec: ToolSpec) -> None:
            self.spec = spec

    other = ToolSpec("mul", "Multiply.", {"type": "object", "properties": {}})
    model = RecordingModel(
        [
            ModelChunk(text="a", input_tokens=3),
            ModelChunk(tool_calls=(ToolCall("x", "add", {}), ToolCall("y", "mul", {}))),
            ModelChunk(text="b", output_tokens=2),
            ModelChunk(input_tokens=1, output_tokens=1),
        ]
    )
    ctx = FakeContext()
    message = await generate(ctx, model, USER, [spec, HasSpec(other)])
    assert tuple(model.tools) == (spec, other)
    assert message.content == "ab"
    assert [c.tool_call_id for c in message.tool_calls] == ["x", "y"]
    assert ctx.log[-1] == ("usage", "recording", 4, 3)
    assert [e for e in ctx.log if e[0] == "reply"] == [
        ("reply", "reply1", "a"),
        ("reply", "reply1", "b"),
        ("reply", "reply1", "<done>"),
    ]


@pytest.mark.anyio
async def test_generate_rejects_something_that_is_not_a_tool() -> None:
    with pytest.raises(TypeError, match="Tool or ToolSpec"):
        await generate(FakeContext(), ScriptedModel(["x"]), USER, ["add"])  # type: ignore[list-item]


@pytest.mark.anyio
async def test_generate_propagates_model_errors() -> None:
    with pytest.raises(ScriptExhausted):
        await generate(FakeContext(), ScriptedModel([]), USER)
