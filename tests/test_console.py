"""The terminal renderer: what a person sees for a stream of events."""

from __future__ import annotations

import io
from collections.abc import Iterator

from rich.console import Console

from runstream._console import ConsoleRenderer
from runstream.events import (
    AgentRunStarted,
    AssistantReply,
    Custom,
    ErrorInfo,
    Event,
    Phase,
    PlannerThought,
    RunInfo,
    StateUpdate,
    ToolEnd,
    ToolStart,
    ToolUpdate,
    Usage,
    Workflow,
)

ROOT = RunInfo(run_id="r0", agent="research")
CHILD = RunInfo(run_id="r1", agent="summarizer", parent_run_id="r0")
GRANDCHILD = RunInfo(run_id="r2", agent="checker", parent_run_id="r1")


class Seq:
    """Hands out gap-free seq numbers, like the root run does."""

    def __init__(self) -> None:
        self._n = iter(range(10_000))

    def __call__(self) -> int:
        return next(self._n)


def render(
    events: list[Event], *, summary: bool = False, **kw: bool
) -> tuple[str, ConsoleRenderer]:
    buf = io.StringIO()
    renderer = ConsoleRenderer(Console(file=buf, width=100, color_system=None), **kw)
    for ev in events:
        renderer.handle(ev)
    if summary:
        renderer.summary()
    return buf.getvalue(), renderer


def reply(run: RunInfo, seq: int, text: str, mid: str = "m1", done: bool = False) -> AssistantReply:
    return AssistantReply(run=run, seq=seq, text=text, message_id=mid, done=done)


def stream(run: RunInfo, seq: Seq, text: str, mid: str) -> Iterator[AssistantReply]:
    for word in text.split(" "):
        yield reply(run, seq(), word + " ", mid)
    yield reply(run, seq(), "", mid, done=True)


def test_reply_deltas_stream_on_one_line() -> None:
    s = Seq()
    events: list[Event] = [
        Workflow(run=ROOT, seq=s(), phase=Phase.STARTED, ts=100.0),
        *stream(ROOT, s, "Solar power is cheap now.", "m1"),
        Workflow(run=ROOT, seq=s(), phase=Phase.COMPLETED, ts=101.25),
    ]
    out, renderer = render(events)
    lines = out.splitlines()
    assert "Solar power is cheap now. " in lines
    assert lines[-1] == "✓ completed in 1.25s"
    assert renderer.outcome is Phase.COMPLETED


def test_new_message_or_other_event_ends_the_streamed_line() -> None:
    s = Seq()
    events: list[Event] = [
        reply(ROOT, s(), "first ", "m1"),
        reply(ROOT, s(), "message", "m1"),
        reply(ROOT, s(), "second ", "m2"),
        ToolStart(run=ROOT, seq=s(), tool_call_id="c1", tool_name="search", payload={}),
        reply(ROOT, s(), "more", "m2"),
    ]
    out, _ = render(events)
    assert out.splitlines() == ["first message", "second ", "▸ search()", "more"]


def test_thoughts_stream_and_can_be_hidden() -> None:
    s = Seq()
    events: list[Event] = [
        PlannerThought(run=ROOT, seq=s(), text="I should ", message_id="t1"),
        PlannerThought(run=ROOT, seq=s(), text="search.", message_id="t1", done=True),
        reply(ROOT, s(), "Answer.", "m1", done=True),
    ]
    out, _ = render(events)
    assert out.splitlines() == ["I should search.", "Answer."]
    hidden, _ = render(events, show_thoughts=False)
    assert hidden.splitlines() == ["Answer."]


def test_thoughts_are_styled_dim_italic() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=100, color_system="standard", force_terminal=True)
    renderer = ConsoleRenderer(console)
    renderer.handle(PlannerThought(run=ROOT, seq=0, text="hmm", message_id="t1", done=True))
    assert "\x1b[2;3m" in buf.getvalue()


def test_tool_lines_show_arguments_duration_and_result() -> None:
    s = Seq()
    events: list[Event] = [
        ToolStart(
            run=ROOT,
            seq=s(),
            tool_call_id="c1",
            tool_name="web_search",
            payload={"query": "solar power", "limit": 3},
        ),
        ToolUpdate(run=ROOT, seq=s(), tool_call_id="c1", tool_name="web_search", progress=0.4),
        ToolUpdate(run=ROOT, seq=s(), tool_call_id="c1", tool_name="web_search", data={"x": 1}),
        ToolUpdate(
            run=ROOT,
            seq=s(),
            tool_call_id="c1",
            tool_name="web_search",
            progress=0.8,
            message="reading results",
        ),
        ToolEnd(
            run=ROOT,
            seq=s(),
            tool_call_id="c1",
            tool_name="web_search",
            result={"hits": 3},
            duration=0.5234,
        ),
    ]
    out, _ = render(events)
    assert out.splitlines() == [
        '▸ web_search(query="solar power", limit=3)',
        "… web_search 40%",
        "… web_search 80% reading results",
        '✓ web_search  0.52s  → {"hits":3}',
    ]


def test_long_arguments_and_results_are_truncated() -> None:
    s = Seq()
    events: list[Event] = [
        ToolStart(run=ROOT, seq=s(), tool_call_id="c1", tool_name="t", payload={"q": "x" * 500}),
        ToolEnd(run=ROOT, seq=s(), tool_call_id="c1", tool_name="t", result="y" * 500),
    ]
    out, _ = render(events)
    start, end = out.splitlines()
    assert start.endswith("…)")
    assert len(start) < 80
    assert end.endswith("…")
    assert len(end) < 90


def test_tool_error_shows_type_and_message() -> None:
    s = Seq()
    events: list[Event] = [
        ToolStart(run=ROOT, seq=s(), tool_call_id="c1", tool_name="fetch", payload={}),
        ToolEnd(
            run=ROOT,
            seq=s(),
            tool_call_id="c1",
            tool_name="fetch",
            error=ErrorInfo("TimeoutError", "gave up after 3 tries"),
            duration=1.5,
        ),
    ]
    out, _ = render(events)
    assert out.splitlines()[-1] == "✗ fetch  1.50s  TimeoutError: gave up after 3 tries"


def test_child_run_is_indented_under_its_tool() -> None:
    s = Seq()
    events: list[Event] = [
        Workflow(run=ROOT, seq=s(), phase=Phase.STARTED, ts=10.0),
        ToolStart(run=ROOT, seq=s(), tool_call_id="c1", tool_name="summarizer", payload={}),
        AgentRunStarted(
            run=ROOT,
            seq=s(),
            tool_call_id="c1",
            tool_name="summarizer",
            child_run_id="r1",
            child_agent="summarizer",
        ),
        Workflow(run=CHILD, seq=s(), phase=Phase.STARTED),
        *stream(CHILD, s, "Short summary.", "cm1"),
        ToolStart(run=CHILD, seq=s(), tool_call_id="c2", tool_name="check", payload={}),
        AgentRunStarted(
            run=CHILD,
            seq=s(),
            tool_call_id="c2",
            tool_name="check",
            child_run_id="r2",
            child_agent="checker",
        ),
        reply(GRANDCHILD, s(), "line one\nline two", "gm1", done=True),
        Workflow(run=GRANDCHILD, seq=s(), phase=Phase.COMPLETED),
        ToolEnd(run=CHILD, seq=s(), tool_call_id="c2", tool_name="check", duration=0.1),
        Workflow(run=CHILD, seq=s(), phase=Phase.COMPLETED),
        ToolEnd(
            run=ROOT,
            seq=s(),
            tool_call_id="c1",
            tool_name="summarizer",
            result={"messages": ["..."]},
            duration=0.2,
        ),
        Workflow(run=ROOT, seq=s(), phase=Phase.COMPLETED, ts=11.0),
    ]
    out, _ = render(events)
    # The agent tool's result is not previewed: the child's lines showed it.
    assert out.splitlines() == [
        "▸ summarizer()",
        "  Short summary. ",
        "  ▸ check()",
        "    line one",
        "    line two",
        "  ✓ check  0.10s",
        "✓ summarizer  0.20s",
        "✓ completed in 1.00s",
    ]


def test_child_failure_and_cancel_are_shown_but_not_child_phases() -> None:
    s = Seq()
    events: list[Event] = [
        AgentRunStarted(
            run=ROOT,
            seq=s(),
            tool_call_id="c1",
            tool_name="summarizer",
            child_run_id="r1",
            child_agent="summarizer",
        ),
        Workflow(run=CHILD, seq=s(), phase=Phase.STARTED),
        Workflow(run=CHILD, seq=s(), phase=Phase.PLANNING),
        Workflow(
            run=CHILD, seq=s(), phase=Phase.FAILED, error=ErrorInfo("ValueError", "bad input")
        ),
        Workflow(run=GRANDCHILD, seq=s(), phase=Phase.CANCELED),
    ]
    out, _ = render(events)
    assert out.splitlines() == [
        "  ✗ failed: ValueError: bad input  (summarizer)",
        "    ■ canceled  (checker)",
    ]


def test_root_failure_and_cancel() -> None:
    failed = Workflow(run=ROOT, seq=0, phase=Phase.FAILED, error=ErrorInfo("KeyError", "'x'"))
    out, renderer = render([failed])
    assert out == "✗ failed: KeyError: 'x'\n"
    assert renderer.outcome is Phase.FAILED
    out, renderer = render([Workflow(run=ROOT, seq=0, phase=Phase.CANCELED)])
    assert out == "■ canceled\n"
    assert renderer.outcome is Phase.CANCELED


def test_state_and_custom_only_in_verbose_mode() -> None:
    s = Seq()
    events: list[Event] = [
        StateUpdate(run=ROOT, seq=s(), node="search", updates={"notes": ["a"]}),
        Custom(run=ROOT, seq=s(), name="progress-bar", data={"pct": 5}),
        Usage(run=ROOT, seq=s(), model="m", input_tokens=1, output_tokens=2),
    ]
    quiet, _ = render(events)
    assert quiet == ""
    verbose, _ = render(events, show_state=True)
    assert verbose.splitlines() == [
        '◦ state search {"notes":["a"]}',
        '◦ progress-bar {"pct":5}',
        "◦ usage m: 1 in, 2 out",
    ]


def test_root_phases_are_dim_lines_but_started_is_not_shown() -> None:
    s = Seq()
    events: list[Event] = [
        Workflow(run=ROOT, seq=s(), phase=phase)
        for phase in (Phase.STARTED, Phase.PLANNING, Phase.EXECUTING_TOOLS, Phase.SYNTHESIZING)
    ]
    out, _ = render(events)
    assert out.splitlines() == ["· planning", "· executing_tools", "· synthesizing"]


def test_summary_totals_tokens_per_model_and_outcome() -> None:
    s = Seq()
    events: list[Event] = [
        Workflow(run=ROOT, seq=s(), phase=Phase.STARTED, ts=5.0),
        Usage(run=ROOT, seq=s(), model="research", input_tokens=100, output_tokens=20),
        Usage(run=CHILD, seq=s(), model="summarizer", input_tokens=30, output_tokens=10),
        Usage(run=ROOT, seq=s(), model="research", input_tokens=150, output_tokens=40),
        ToolEnd(run=ROOT, seq=s(), tool_call_id="c1", tool_name="a"),
        ToolEnd(run=CHILD, seq=s(), tool_call_id="c2", tool_name="b"),
        ToolEnd(run=ROOT, seq=s(), tool_call_id="c3", tool_name="c", error=ErrorInfo("E", "x")),
        reply(ROOT, s(), "unfinished line", "m1"),
        Workflow(run=ROOT, seq=s(), phase=Phase.COMPLETED, ts=7.5),
    ]
    out, renderer = render(events, summary=True)
    assert renderer.usage == {"research": (250, 60), "summarizer": (30, 10)}
    lines = out.splitlines()
    summary = [line.split() for line in lines[lines.index("") + 1 :]]
    assert summary == [
        ["research", "250", "in", "60", "out"],
        ["summarizer", "30", "in", "10", "out"],
        ["total", "280", "in", "70", "out", "(350", "tokens)"],
        ["tools", "2", "ok,", "1", "failed"],
        ["outcome", "✓", "completed", "in", "2.50s"],
    ]


def test_summary_of_a_failed_run() -> None:
    failed = Workflow(run=ROOT, seq=0, phase=Phase.FAILED, error=ErrorInfo("KeyError", "'x'"))
    out, _ = render([failed], summary=True)
    assert out.splitlines()[-1].split() == ["outcome", "✗", "failed:", "KeyError:", "'x'"]


def test_summary_before_the_end() -> None:
    out, _ = render([], summary=True)
    assert [line.split() for line in out.splitlines()] == [
        [],
        ["total", "0", "in", "0", "out", "(0", "tokens)"],
        ["tools", "0", "ok,", "0", "failed"],
        ["outcome", "run", "did", "not", "finish"],
    ]


def test_output_has_no_control_codes_when_piped() -> None:
    buf = io.StringIO()
    # A console on a file that is not a terminal: rich decides not to colour.
    renderer = ConsoleRenderer(Console(file=buf, width=100))
    renderer.handle(reply(ROOT, 0, "plain", done=True))
    renderer.handle(ToolStart(run=ROOT, seq=1, tool_call_id="c", tool_name="t", payload={}))
    assert buf.getvalue() == "plain\n▸ t()\n"
