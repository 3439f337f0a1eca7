"""Field types as mypy --strict sees them.

Each line ending in an expect-error comment must produce exactly one error
containing the comment's text; every other line must type-check.
"""

from __future__ import annotations

import runstream as rs


def duration_is_a_float(ev: rs.ToolEnd) -> float:
    return ev.duration + 1.0


def identity_is_typed(ev: rs.ToolEnd) -> str:
    parent: str | None = ev.parent_run_id
    thread: str | None = ev.thread_id
    node: str | None = ev.node
    seq: int = ev.seq
    ts: float = ev.ts
    return f"{ev.run_id}{ev.agent}{parent}{thread}{node}{seq + 1}{ts + 0.5}"


def error_is_optional(ev: rs.ToolEnd) -> str:
    if ev.error is None:
        return "ok"
    retry: bool = ev.error.retryable
    return ev.error.type + ev.error.message + str(retry)


def narrowed_by_isinstance(ev: rs.Event) -> float:
    if isinstance(ev, rs.ToolEnd):
        return ev.duration
    return 0.0


def bound_by_pattern(ev: rs.Event) -> int:
    match ev:
        case rs.Usage(input_tokens=n):
            return n
        case rs.Workflow(phase=phase) if phase.is_terminal:
            return 1
    return 0


def build(run: rs.RunInfo) -> rs.ToolEnd:
    return rs.ToolEnd(run=run, seq=0, tool_call_id="c", tool_name="t", duration=0.5)


def duration_is_not_a_string(ev: rs.ToolEnd) -> object:
    return ev.duration + "x"  # expect-error: Unsupported operand types


def error_may_be_none(ev: rs.ToolEnd) -> str:
    return ev.error.message  # expect-error: "None"


def seq_is_not_a_string(ev: rs.ToolEnd) -> str:
    return ev.seq  # expect-error: Incompatible return value type


def events_are_frozen(ev: rs.ToolEnd) -> None:
    ev.duration = 2.0  # expect-error: read-only


def identity_is_read_only(ev: rs.ToolEnd) -> None:
    ev.run_id = "other"  # expect-error: read-only


def keyword_only(run: rs.RunInfo) -> rs.ToolEnd:
    return rs.ToolEnd(run, seq=0, tool_call_id="c", tool_name="t")  # expect-error: positional


def wrong_field_type(run: rs.RunInfo) -> rs.ToolEnd:
    return rs.ToolEnd(run=run, seq="0", tool_call_id="c", tool_name="t")  # expect-error: "seq"
