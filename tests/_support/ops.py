"""Builders of events and a virtual-time harness shared by the operator tests.

Virtual time: `TestScheduler` counts plain seconds. `on_next(210, x)` happens at
clock 210.0, and `schedule_relative(w, ...)` adds `timedelta(seconds=w)`, so an
operator's `window=30` lasts 30 ticks and `window=0.05` lasts 0.05 ticks. The
tests use whole-tick windows so recorded times are exact; one coalesce test uses
the default 0.05 to show the conversion. At equal times, hot-observable messages
(scheduled when the observable is created) run before timers the operator
schedules later.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from reactivex import Observable, abc
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded

import runstream as rs

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

ROOT = rs.RunInfo(run_id="root", agent="main", thread_id="t1")
CHILD = rs.RunInfo(run_id="child", agent="helper", parent_run_id="root", thread_id="t1")


class Events:
    """Makes events with consecutive `seq` numbers, as one root run would."""

    def __init__(self, start: int = 0) -> None:
        self._seq = itertools.count(start)

    def _base(self, run: rs.RunInfo, node: str | None) -> dict[str, Any]:
        return {"run": run, "node": node, "seq": next(self._seq), "ts": 1000.0}

    def reply(
        self,
        text: str,
        message_id: str = "m1",
        *,
        done: bool = False,
        internal: bool = False,
        run: rs.RunInfo = ROOT,
    ) -> rs.AssistantReply:
        return rs.AssistantReply(
            **self._base(run, "agent"),
            text=text,
            message_id=message_id,
            done=done,
            internal=internal,
        )

    def thought(
        self,
        text: str,
        message_id: str = "m1",
        *,
        done: bool = False,
        internal: bool = False,
        run: rs.RunInfo = ROOT,
    ) -> rs.PlannerThought:
        return rs.PlannerThought(
            **self._base(run, "agent"),
            text=text,
            message_id=message_id,
            done=done,
            internal=internal,
        )

    def start(
        self, call: str, name: str = "search", payload: Any = None, *, run: rs.RunInfo = ROOT
    ) -> rs.ToolStart:
        return rs.ToolStart(
            **self._base(run, "tools"),
            tool_call_id=call,
            tool_name=name,
            payload={"q": call} if payload is None else payload,
        )

    def update(
        self, call: str, progress: float | None = None, *, run: rs.RunInfo = ROOT
    ) -> rs.ToolUpdate:
        return rs.ToolUpdate(
            **self._base(run, "tools"),
            tool_call_id=call,
            tool_name="search",
            progress=progress,
            message=f"{call} at {progress}",
            data={"hits": 3},
        )

    def end(
        self,
        call: str,
        name: str = "search",
        *,
        error: rs.ErrorInfo | None = None,
        run: rs.RunInfo = ROOT,
    ) -> rs.ToolEnd:
        return rs.ToolEnd(
            **self._base(run, "tools"),
            tool_call_id=call,
            tool_name=name,
            result=None if error else {"answer": 42},
            error=error,
            duration=0.25,
        )

    def usage(
        self, model: str, input_tokens: int, output_tokens: int, *, run: rs.RunInfo = ROOT
    ) -> rs.Usage:
        return rs.Usage(
            **self._base(run, "agent"),
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )

    def workflow(
        self,
        phase: rs.Phase,
        *,
        error: rs.ErrorInfo | None = None,
        run: rs.RunInfo = ROOT,
    ) -> rs.Workflow:
        return rs.Workflow(**self._base(run, None), phase=phase, error=error)

    def custom(self, name: str = "note", *, run: rs.RunInfo = ROOT) -> rs.Custom:
        return rs.Custom(**self._base(run, "agent"), name=name, data={"k": 1})

    def make(self, cls: type[Any], *, run: rs.RunInfo = ROOT, **fields: Any) -> Any:
        """Any event class, with the next seq."""
        return cls(**self._base(run, "agent"), **fields)


class RecordingScheduler(TestScheduler):
    """A `TestScheduler` that keeps every relative timer it was asked for."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[tuple[float, abc.DisposableBase]] = []

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        disposable = super().schedule_relative(duetime, action, state)
        self.timers.append((self.clock + duetime, disposable))
        return disposable

    def live_timers(self) -> list[float]:
        """Due times of timers neither disposed nor fired yet."""
        return [
            due
            for due, d in self.timers
            if not getattr(d, "is_disposed", False) and due > self.clock
        ]


def run_hot(
    operator: Callable[[Observable[Any]], Observable[Any]],
    *messages: Recorded[Any],
    disposed: float = 1000,
    scheduler: TestScheduler | None = None,
) -> list[Recorded[Any]]:
    """Subscribe `operator` at 200 to a hot source of `messages`; dispose at `disposed`."""
    sched = scheduler or RecordingScheduler()
    source = sched.create_hot_observable(*messages)
    return sched.start(
        lambda: source.pipe(operator), created=100, subscribed=200, disposed=disposed
    ).messages


def values(messages: list[Recorded[Any]]) -> list[Any]:
    """The `on_next` values among `messages`."""
    return [m.value.value for m in messages if m.value.kind == "N"]


def timeline(messages: list[Recorded[Any]]) -> Iterator[tuple[float, str, Any]]:
    """(time, kind, value) for each message; the value of an error is the exception."""
    for m in messages:
        kind = m.value.kind
        if kind == "N":
            yield m.time, kind, m.value.value
        elif kind == "E":
            yield m.time, kind, m.value.exception
        else:
            yield m.time, kind, None
