"""`OtelSink` with the OpenTelemetry SDK's in-memory exporter: the spans a run makes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import runstream as rs
from _support.apps import graphs
from _support.watch import Watched
from runstream._demo import build_demo_agent
from runstream.tracing import OtelSink

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    named = {s.name: s for s in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


def attrs_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_a_run_with_tools_and_a_child_agent_makes_nested_spans(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    memory = rs.MemorySink[rs.Event]()
    await rs.drain(
        build_demo_agent(delay=0).run("Is solar cheaper?", thread_id="t-9"),
        OtelSink(provider),
        memory,
    )
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {
        "invoke_agent researcher",
        "execute_tool web_search",
        "execute_tool fetch_stats",
        "execute_tool summarizer",
        "invoke_agent summarizer",
    }
    root = spans["invoke_agent researcher"]
    assert root.parent is None
    assert attrs_of(root) | {"gen_ai.agent.id": None} == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "researcher",
        "gen_ai.agent.id": None,
        "gen_ai.conversation.id": "t-9",
        "gen_ai.usage.input_tokens": sum(
            e.input_tokens
            for e in memory.items
            if isinstance(e, rs.Usage) and e.parent_run_id is None
        ),
        "gen_ai.usage.output_tokens": sum(
            e.output_tokens
            for e in memory.items
            if isinstance(e, rs.Usage) and e.parent_run_id is None
        ),
        "gen_ai.request.model": "scripted-large",
        "runstream.phase": "completed",
    }
    for tool in ("web_search", "fetch_stats", "summarizer"):
        span = spans[f"execute_tool {tool}"]
        assert span.parent is not None
        assert span.parent.span_id == root.context.span_id
        assert attrs_of(span)["gen_ai.tool.name"] == tool
        assert "gen_ai.tool.call.arguments" not in attrs_of(span)  # no content by default
    child = spans["invoke_agent summarizer"]
    assert child.parent is not None
    assert child.parent.span_id == spans["execute_tool summarizer"].context.span_id
    assert attrs_of(child)["gen_ai.request.model"] == "scripted-small"
    start = next(
        e for e in memory.items if isinstance(e, rs.ToolStart) and e.tool_name == "web_search"
    )
    assert spans["execute_tool web_search"].start_time == int(start.ts * 1e9)
    assert attrs_of(spans["execute_tool web_search"])["gen_ai.tool.call.id"] == start.tool_call_id
    assert all(s.status.status_code is StatusCode.UNSET for s in spans.values())


async def test_content_is_recorded_only_when_asked(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    await rs.drain(build_demo_agent(delay=0).run("q"), OtelSink(provider, capture_content=True))
    span = by_name(exporter.get_finished_spans())["execute_tool fetch_stats"]
    assert (
        attrs_of(span)["gen_ai.tool.call.arguments"] == '{"topic": "electricity generation cost"}'
    )
    assert '"solar_usd_mwh": 40' in attrs_of(span)["gen_ai.tool.call.result"]


async def test_a_failed_run_and_a_failed_tool_set_error_status(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced

    @rs.tool
    def broken(x: int) -> int:
        """Always fails."""
        raise ValueError("no")

    model = rs.ScriptedModel([rs.Turn(tool_calls=[("broken", {"x": 1})]), "done"])
    await rs.drain(rs.create_agent(model, tools=[broken]).run("go"), OtelSink(provider))
    with pytest.raises(rs.RunFailed):
        await rs.drain(graphs["ticker"].run({"n": 5, "fail_at": 2}), OtelSink(provider))
    spans = by_name(exporter.get_finished_spans())
    tool = spans["execute_tool broken"]
    assert (tool.status.status_code, attrs_of(tool)["error.type"]) == (
        StatusCode.ERROR,
        "ValueError",
    )
    run = spans["invoke_agent ticker"]
    assert run.status.status_code is StatusCode.ERROR
    assert attrs_of(run)["error.type"] == "RuntimeError"
    assert attrs_of(run)["runstream.phase"] == "failed"


async def test_spans_end_when_a_run_is_cancelled_or_the_sink_disposed(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    seen = Watched()
    attachment = rs.attach(graphs["ticker"].run({"n": 9, "hang_at": 3}), OtelSink(provider), seen)
    await seen.reached(4)
    attachment.cancel()  # the run ends canceled: its span ends with it
    await attachment.wait()
    [canceled] = exporter.get_finished_spans()
    assert attrs_of(canceled)["runstream.phase"] == "canceled"
    assert canceled.status.status_code is StatusCode.UNSET

    exporter.clear()
    sink = OtelSink(provider)
    stream = graphs["ticker"].run({"n": 9, "hang_at": 3})
    async for event in stream:  # leave the loop mid-run: the stream is disposed
        await sink.send(event)
        if event.seq == 3:
            break
    await sink.close()
    [cut] = exporter.get_finished_spans()
    assert cut.status.status_code is StatusCode.ERROR
    assert cut.end_time is not None


async def test_as_a_runtime_global_sink_every_run_is_traced(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    async with rs.Runtime(graphs, sinks=[OtelSink(provider)]) as rt:
        ids = [await rt.start("ticker", {"n": 3}) for _ in range(3)]
        for run_id in ids:
            await rt.wait(run_id)
    spans = exporter.get_finished_spans()
    assert sorted(attrs_of(s)["gen_ai.agent.id"] for s in spans) == sorted(ids)
