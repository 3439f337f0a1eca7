"""A run traced with OpenTelemetry: an agent, its tool and its child agent, as a span tree.

Needs `pip install "runstream[otel]" opentelemetry-sdk`. In production, give
`OtelSink` your tracer provider (OTLP exporter, Jaeger, Honeycomb, ...); here
the SDK's in-memory exporter collects the spans so they can be printed.
"""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import runstream as rs
from runstream.tracing import OtelSink


def show(span: ReadableSpan, spans: list[ReadableSpan], depth: int = 0) -> None:
    assert span.start_time is not None
    assert span.end_time is not None
    ms = (span.end_time - span.start_time) / 1e6
    tokens = span.attributes.get("gen_ai.usage.output_tokens") if span.attributes else None
    extra = f", {tokens} tokens out" if tokens else ""
    print(f"{'  ' * depth}{span.name} ({ms:.0f} ms{extra})")
    children = [
        s for s in spans if s.parent is not None and s.parent.span_id == span.context.span_id
    ]
    for child in sorted(children, key=lambda s: s.start_time or 0):
        show(child, spans, depth + 1)


@rs.tool
async def lookup(topic: str) -> str:
    """Look a topic up."""
    await asyncio.sleep(0.05)
    return f"three reports on {topic}"


def build_agent() -> rs.CompiledGraph:
    summarizer = rs.create_agent(
        rs.ScriptedModel(["Solar is cheaper in most places."], delay=0.01, name="small"),
        name="summarizer",
    )
    model = rs.ScriptedModel(
        [
            rs.Turn(
                tool_calls=[("lookup", {"topic": "solar"}), ("summarizer", {"input": "solar"})]
            ),
            "Yes: solar is now cheaper than coal in most of the world.",
        ],
        delay=0.01,
        name="large",
    )
    summarize = rs.agent_tool(summarizer, "summarizer", "Summarize a topic.")
    return rs.create_agent(model, tools=[lookup, summarize], name="researcher")


async def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    await rs.drain(build_agent().run("Is solar cheaper?"), OtelSink(provider))
    spans = list(exporter.get_finished_spans())
    for root in (s for s in spans if s.parent is None):
        show(root, spans)
    provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
