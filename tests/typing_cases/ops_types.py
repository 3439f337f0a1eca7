"""Operators keep element types through `.pipe(...)`; checked by tests/test_ops_typing.py.

Each line ending in an expect-error comment must produce exactly one error
containing the comment's text; every other line must type-check.
"""

from __future__ import annotations

from reactivex import Observable
from reactivex import operators as rx_ops

from runstream import AssistantReply, Custom, Event, ToolEnd, ToolStart, ToolUpdate, Usage, ops
from runstream import Workflow as Flow
from runstream.ops import Profile, UsageTotals


def seconds(event: ToolEnd) -> float:
    return event.duration


def passing(src: Observable[Event]) -> None:
    ends: Observable[ToolEnd] = src.pipe(ops.of_type(ToolEnd))
    two: Observable[ToolStart | ToolEnd] = src.pipe(ops.of_type(ToolStart, ToolEnd))
    three: Observable[ToolStart | ToolEnd | Usage] = src.pipe(
        ops.of_type(ToolStart, ToolEnd, Usage)
    )
    four: Observable[ToolStart | ToolEnd | Usage | Flow] = src.pipe(
        ops.of_type(ToolStart, ToolEnd, Usage, Flow)
    )
    five: Observable[Event] = src.pipe(ops.of_type(ToolStart, ToolEnd, Usage, Flow, Custom))
    durations: Observable[float] = ends.pipe(rx_ops.map(seconds))
    ends.subscribe(lambda e: print(e.tool_name, e.duration, e.error))
    root_ends: Observable[ToolEnd] = src.pipe(ops.of_type(ToolEnd), ops.root_only())
    replies: Observable[AssistantReply] = src.pipe(
        ops.of_type(AssistantReply), ops.coalesce_text(0.05)
    )
    updates: Observable[ToolUpdate] = src.pipe(ops.of_type(ToolUpdate), ops.latest_progress(1))
    batches: Observable[list[ToolEnd]] = ends.pipe(ops.batch(100, 0.05))
    totals: Observable[UsageTotals] = src.pipe(ops.usage_totals())
    usage_only: Observable[UsageTotals] = src.pipe(ops.of_type(Usage), ops.usage_totals())
    chat: Observable[Event] = src.pipe(ops.profile("user_chat"))
    metrics: Observable[Event] = src.pipe(ops.profile(Profile.METRICS))
    print(two, three, four, five, durations, root_ends, replies, updates, batches)
    print(totals, usage_only, chat, metrics)


def failing(src: Observable[Event]) -> None:
    a: Observable[ToolStart] = src.pipe(ops.of_type(ToolEnd))  # expect-error: incompatible type
    b: Observable[ToolEnd] = src.pipe(ops.of_type(ToolStart, ToolEnd))  # expect-error: incompatible
    c: Observable[ToolEnd] = src.pipe(ops.root_only())  # expect-error: incompatible type
    d: Observable[Event] = src.pipe(ops.batch(10, 0.1))  # expect-error: incompatible type
    e: Observable[Usage] = src.pipe(ops.usage_totals())  # expect-error: incompatible type
    src.pipe(ops.of_type(ToolEnd)).subscribe(lambda e: e.payload)  # expect-error: "payload"
    f = src.pipe(ops.of_type(ToolStart), rx_ops.map(seconds))  # expect-error: Cannot infer
    g = src.pipe(ops.profile(3))  # expect-error: incompatible type "int"
    h = ops.batch("10", 0.1)  # expect-error: incompatible type "str"
    print(a, b, c, d, e, f, g, h)
