"""`OtelSink`: a run's events as OpenTelemetry spans, after the GenAI semantic conventions.

Needs the `otel` extra (opentelemetry-api; install an SDK and an exporter to
send the spans anywhere).

Spans:

- `invoke_agent {agent}` for every run, from its first event to its terminal
  `Workflow`; a child run's span is a child of the `execute_tool` span of
  the call that started it (its `AgentRunStarted`);
- `execute_tool {tool_name}` for every tool call, from `ToolStart` to
  `ToolEnd`, a child of its run's span.

Token usage is summed on the run's span (`gen_ai.usage.input_tokens`,
`gen_ai.usage.output_tokens`: the run's own model calls, not its children's,
which are on theirs); there are no per-call `chat` spans. Span times are the
events' `ts`, so a replayed recording traces as it happened.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, TracerProvider

from .events import AgentRunStarted, Event, ToolEnd, ToolStart, Usage, Workflow

__all__ = ["OtelSink"]


def _ns(ts: float) -> int:
    return int(ts * 1e9)


class _Run:
    __slots__ = ("input_tokens", "models", "output_tokens", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.input_tokens = 0
        self.output_tokens = 0
        self.models: set[str] = set()


class OtelSink:
    """A `Sink[Event]` that turns runs into OpenTelemetry spans.

    Attach it to any stream of events: a run, several runs (as a `Runtime`
    global sink), a replay. Spans end with their run or call; spans still
    open when the sink is closed (the stream was disposed before the run
    ended) end then, with status ERROR.

    Args:
        tracer_provider: where spans go (default: the global one).
        capture_content: also record tool arguments and results
            (`gen_ai.tool.call.arguments`, `gen_ai.tool.call.result`); off by
            default, as they may hold personal data.
    """

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, capture_content: bool = False
    ) -> None:
        self._tracer = trace.get_tracer("runstream", tracer_provider=tracer_provider)
        self.capture_content = capture_content
        self._runs: dict[str, _Run] = {}
        self._tools: dict[str, Span] = {}  # tool_call_id -> its span, while open
        self._started_by: dict[str, str] = {}  # child run id -> the tool call that started it

    async def send(self, event: Event) -> None:
        """Trace one event."""
        self._on(event)

    async def send_batch(self, events: Sequence[Event]) -> None:
        """Trace events, in order."""
        for event in events:
            self._on(event)

    async def close(self) -> None:
        """End every span still open, with status ERROR (its run did not end here)."""
        for span in self._tools.values():
            span.set_status(Status(StatusCode.ERROR, "the stream ended before the tool call"))
            span.end()
        self._tools.clear()
        for run in self._runs.values():
            self._usage(run)
            run.span.set_status(Status(StatusCode.ERROR, "the stream ended before the run"))
            run.span.end()
        self._runs.clear()

    def _on(self, event: Event) -> None:
        run = self._runs.get(event.run_id) or self._start(event)
        match event:
            case ToolStart():
                self._tool_start(event, run)
            case ToolEnd():
                self._tool_end(event)
            case Usage():
                run.input_tokens += event.input_tokens
                run.output_tokens += event.output_tokens
                run.models.add(event.model)
            case AgentRunStarted():
                self._started_by[event.child_run_id] = event.tool_call_id
            case Workflow() if event.phase.is_terminal:
                self._end(event, run)
            case _:
                pass

    def _start(self, event: Event) -> _Run:
        parent: Span | None = None
        if event.parent_run_id is not None:
            call = self._started_by.pop(event.run_id, None)
            parent = self._tools.get(call) if call is not None else None
            if parent is None and event.parent_run_id in self._runs:
                parent = self._runs[event.parent_run_id].span
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": event.agent,
            "gen_ai.agent.id": event.run_id,
        }
        if event.thread_id is not None:
            attributes["gen_ai.conversation.id"] = event.thread_id
        span = self._tracer.start_span(
            f"invoke_agent {event.agent}",
            context=trace.set_span_in_context(parent) if parent is not None else None,
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(event.ts),
        )
        run = self._runs[event.run_id] = _Run(span)
        return run

    def _tool_start(self, event: ToolStart, run: _Run) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": event.tool_name,
            "gen_ai.tool.call.id": event.tool_call_id,
            "gen_ai.tool.type": "function",
        }
        if self.capture_content:
            attributes["gen_ai.tool.call.arguments"] = _text(event.payload)
        self._tools[event.tool_call_id] = self._tracer.start_span(
            f"execute_tool {event.tool_name}",
            context=trace.set_span_in_context(run.span),
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(event.ts),
        )

    def _tool_end(self, event: ToolEnd) -> None:
        span = self._tools.pop(event.tool_call_id, None)
        if span is None:
            return  # its start was not seen (a stream joined mid-run)
        if event.error is not None:
            span.set_attribute("error.type", event.error.type)
            span.set_status(Status(StatusCode.ERROR, event.error.message))
        elif self.capture_content:
            span.set_attribute("gen_ai.tool.call.result", _text(event.result))
        span.end(end_time=_ns(event.ts))

    def _end(self, event: Workflow, run: _Run) -> None:
        del self._runs[event.run_id]
        self._usage(run)
        run.span.set_attribute("runstream.phase", event.phase.value)
        if event.error is not None and event.phase.value == "failed":
            run.span.set_attribute("error.type", event.error.type)
            run.span.set_status(Status(StatusCode.ERROR, event.error.message))
        run.span.end(end_time=_ns(event.ts))

    @staticmethod
    def _usage(run: _Run) -> None:
        if run.input_tokens or run.output_tokens:
            run.span.set_attribute("gen_ai.usage.input_tokens", run.input_tokens)
            run.span.set_attribute("gen_ai.usage.output_tokens", run.output_tokens)
        if len(run.models) == 1:
            run.span.set_attribute("gen_ai.request.model", next(iter(run.models)))


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
