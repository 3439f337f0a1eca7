"""`OpenAIChatModel` against a real HTTP server on loopback that speaks the format.

Dialect fixtures (tests/models/fixtures/*.sse) are streams in the shapes
OpenAI, vLLM, llama.cpp and Ollama send; errors are the statuses and bodies
those servers answer with.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import anyio
import pytest

import runstream as rs
from _support.chat_server import Refuse, Stream, chat_server, fixture, sse, text_turn, tool_turn
from _support.invariants import check_invariants, terminal
from _support.serving import refusing_port
from runstream.codec import dumps

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

KEY = "sk-test-SECRET-0123456789"
ASK = [rs.Message("user", "Weather in Oslo?")]


async def turn(model: rs.ChatModel, messages: list[rs.Message] = ASK, **kw: Any) -> rs.ModelChunk:
    """One streamed turn, its chunks summed into one."""
    text = thought = ""
    calls: list[rs.ToolCall] = []
    tokens = [0, 0]
    async for chunk in model.stream(messages, **kw):
        text += chunk.text
        thought += chunk.thought
        calls += chunk.tool_calls
        tokens[0] += chunk.input_tokens
        tokens[1] += chunk.output_tokens
    return rs.ModelChunk(
        text=text,
        thought=thought,
        tool_calls=tuple(calls),
        input_tokens=tokens[0],
        output_tokens=tokens[1],
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "openai_text.sse",
            rs.ModelChunk(text="It is sunny in Oslo.", input_tokens=140, output_tokens=6),
        ),
        (
            "openai_tools.sse",
            rs.ModelChunk(
                tool_calls=(
                    rs.ToolCall("call_Oslo01", "weather", {"city": "Oslo"}),
                    rs.ToolCall("call_Time02", "clock", {"tz": "Europe/Oslo"}),
                ),
                input_tokens=82,
                output_tokens=41,
            ),
        ),
        (
            "vllm_reasoning.sse",
            rs.ModelChunk(
                text="2 + 3 = 5",
                thought="The user asks for 2+3.",
                input_tokens=17,
                output_tokens=23,
            ),
        ),
        (
            "llamacpp_reasoning.sse",
            rs.ModelChunk(text="5", thought="Two plus three.", input_tokens=12, output_tokens=9),
        ),
        (
            "ollama_tools.sse",
            rs.ModelChunk(
                tool_calls=(rs.ToolCall("call_k2v9p3", "weather", {"city": "Oslo"}),),
                input_tokens=161,
                output_tokens=17,
            ),
        ),
    ],
)
async def test_each_dialect_streams_text_thoughts_tool_calls_and_usage(
    name: str, expected: rs.ModelChunk
) -> None:
    async with chat_server(Stream(fixture(name), piece=7)) as server:
        model = rs.OpenAIChatModel("m", base_url=server.url, api_key=KEY)
        try:
            assert await turn(model) == expected
        finally:
            await model.aclose()
        sent = server.requests[0]
        assert sent["stream"] is True
        assert sent["stream_options"] == {"include_usage": True}
        assert sent["messages"] == [{"role": "user", "content": "Weather in Oslo?"}]
        assert server.headers[0]["authorization"] == f"Bearer {KEY}"


@rs.tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def test_an_agent_calls_tools_and_answers_over_a_real_server() -> None:
    script = [
        Stream(tool_turn(("call_1", "weather", '{"city": "Oslo"}'))),
        Stream(text_turn("It is ", "sunny.")),
    ]
    async with chat_server(*script) as server:
        model = rs.OpenAIChatModel("m", base_url=server.url, extra_body={"temperature": 0})
        try:
            app = rs.create_agent(model, tools=[weather], name="forecaster")
            events = [e async for e in app.run("Weather in Oslo?")]
        finally:
            await model.aclose()
    check_invariants(events)
    [start] = [e for e in events if isinstance(e, rs.ToolStart)]
    [end] = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert (start.tool_name, start.payload, end.result) == (
        "weather",
        {"city": "Oslo"},
        "sunny in Oslo",
    )
    reply = "".join(e.text for e in events if isinstance(e, rs.AssistantReply))
    assert reply == "It is sunny."
    assert [(u.input_tokens, u.output_tokens) for u in events if isinstance(u, rs.Usage)] == [
        (20, 8),
        (10, 5),
    ]
    first, second = server.requests
    assert first["temperature"] == 0
    assert first["tools"][0]["function"]["name"] == "weather"
    assert first["tools"][0]["function"]["parameters"]["properties"]["city"]["type"] == "string"
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    assert tool == {"role": "tool", "content": "sunny in Oslo", "tool_call_id": "call_1"}


async def test_tool_arguments_that_are_not_json_are_an_error_the_model_reads() -> None:
    script = [
        Stream(tool_turn(("call_1", "weather", '{"city": Oslo'))),
        Stream(text_turn("Sorry.")),
    ]
    async with chat_server(*script) as server:
        model = rs.OpenAIChatModel("m", base_url=server.url)
        try:
            app = rs.create_agent(model, tools=[weather])
            events = [e async for e in app.run("Weather?")]
        finally:
            await model.aclose()
    check_invariants(events)
    assert events[-1].phase is rs.Phase.COMPLETED  # type: ignore[union-attr]
    [end] = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert end.error is not None
    tool = server.requests[1]["messages"][-1]
    assert tool["role"] == "tool"
    assert tool["content"].startswith("Error")


async def test_429_and_5xx_before_the_first_chunk_are_retried_honouring_retry_after() -> None:
    script = [
        Refuse(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"}),
        Refuse(503, "upstream overloaded"),
        Stream(text_turn("ok")),
    ]
    async with chat_server(*script) as server:
        model = rs.OpenAIChatModel("m", base_url=server.url, max_retries=2)
        try:
            assert (await turn(model)).text == "ok"
        finally:
            await model.aclose()
        assert len(server.requests) == 3


async def test_retries_run_out_with_a_retryable_model_error() -> None:
    script = [Refuse(500, {"error": {"message": "internal"}})] * 2
    async with chat_server(*script) as server:
        model = rs.OpenAIChatModel("m", base_url=server.url, max_retries=1)
        try:
            with pytest.raises(rs.ModelError, match="HTTP 500: internal") as caught:
                await turn(model)
        finally:
            await model.aclose()
    assert (caught.value.status, caught.value.retryable) == (500, True)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            401,
            {"error": {"message": "Incorrect API key provided: sk-test-***6789."}},
            "Incorrect API key",
        ),
        (403, {"error": {"message": "Project does not have access"}}, "does not have access"),
        (404, {"error": {"message": "The model `nope` does not exist"}}, "does not exist"),
        (400, {"error": {"message": "'messages' must contain 'json'"}}, "must contain"),
        (400, "plain text from a proxy", "plain text from a proxy"),
    ],
)
async def test_client_errors_are_not_retried_and_name_the_provider_s_message(
    status: int, body: Any, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with chat_server(Refuse(status, body), Stream(text_turn("never"))) as server:
        model = rs.OpenAIChatModel("m", base_url=server.url, api_key=KEY, max_retries=3)
        try:
            with pytest.raises(rs.ModelError, match=message) as caught:
                await turn(model)
        finally:
            await model.aclose()
        assert len(server.requests) == 1
    assert (caught.value.status, caught.value.retryable) == (status, False)
    assert f"HTTP {status}" in str(caught.value)
    assert KEY not in str(caught.value)
    assert KEY not in caplog.text


async def test_an_unreachable_server_is_retried_then_a_model_error() -> None:
    with refusing_port() as port:
        model = rs.OpenAIChatModel("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
        try:
            with pytest.raises(rs.ModelError, match="cannot reach the server") as caught:
                await turn(model)
        finally:
            await model.aclose()
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (
            Stream(
                sse(
                    {"choices": [{"index": 0, "delta": {"content": "Hi"}}]},
                    {"error": {"message": "overloaded_error"}},
                )
            ),
            "error mid-stream: overloaded_error",
        ),
        (Stream(text_turn("a", "b", "c"), cut=150), "connection was cut mid-stream"),
        (Stream(sse("{not json")), "not JSON"),
        (
            Stream(sse({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}, done=False)),
            "ended before",
        ),
    ],
)
async def test_failures_mid_stream_fail_the_run_with_a_model_error(
    stream: Stream, message: str
) -> None:
    async with chat_server(stream) as server:
        model = rs.OpenAIChatModel("m", base_url=server.url, api_key=KEY)
        try:
            app = rs.create_agent(model)
            stream_events: list[rs.Event] = []
            with pytest.raises(rs.RunFailed) as failed:
                await into(stream_events, app.run("Hi"))
        finally:
            await model.aclose()
    check_invariants(stream_events)
    end = terminal(stream_events, rs.Phase.FAILED)
    assert end.error is not None
    assert end.error.type == "ModelError"
    assert message in end.error.message
    assert failed.value.error == end.error
    assert KEY not in "".join(dumps(e).decode() for e in stream_events)


async def into(events: list[rs.Event], run: rs.RunStream) -> None:
    """Append the run's events to `events` until it ends (or raises)."""
    async for e in run:
        events.append(e)


def test_bad_arguments_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="model must be a non-empty name"):
        rs.OpenAIChatModel("")
    with pytest.raises(ValueError, match="timeout"):
        rs.OpenAIChatModel("m", timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        rs.OpenAIChatModel("m", max_retries=-1)


async def test_base_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with chat_server(Stream(text_turn("hi"))) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        model = rs.OpenAIChatModel("m")
        try:
            assert (await turn(model)).text == "hi"
        finally:
            await model.aclose()
        assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(model)


async def test_runstream_demo_runs_on_a_model_server() -> None:
    async with chat_server(Stream(text_turn("Solar ", "is cheaper.")), Refuse(401)) as server:
        command = [sys.executable, "-m", "runstream", "demo", "--delay", "0", "--model", "m"]
        done = await anyio.run_process([*command, "--base-url", server.url], check=False)
        out = done.stdout.decode()
        assert done.returncode == 0, done.stderr.decode()
        assert "Solar is cheaper." in out
        sent = server.requests[0]
        assert sent["model"] == "m"
        assert {t["function"]["name"] for t in sent["tools"]} == {
            "web_search",
            "fetch_stats",
            "summarizer",
        }
        refused = await anyio.run_process([*command, "--base-url", server.url], check=False)
        assert refused.returncode == 1
        assert "ModelError" in refused.stdout.decode() + refused.stderr.decode()
        assert "HTTP 401" in refused.stdout.decode() + refused.stderr.decode()


def test_demo_base_url_goes_with_model(capsys: pytest.CaptureFixture[str]) -> None:
    from runstream.cli import main

    assert main(["demo", "--base-url", "http://127.0.0.1:1/v1"]) == 2
    assert capsys.readouterr().err.endswith("--base-url goes with --model NAME\n")
