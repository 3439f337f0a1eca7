"""Choosing the scheduler of a time-based operator, and serialising its entry points."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import abc
from reactivex.scheduler import TimeoutScheduler, VirtualTimeScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

__all__ = ["check_positive", "pick_scheduler", "serialized"]

_F = TypeVar("_F", bound=Callable[..., Any])


def pick_scheduler(
    given: abc.SchedulerBase | None, subscribed: abc.SchedulerBase | None
) -> abc.SchedulerBase:
    """The operator's own `scheduler=` if given, else the subscriber's, else timeouts.

    This is reactivex's own rule (see `debounce`), so an explicit argument is never
    overridden. `attach` and `drain` subscribe with an
    `AsyncIOScheduler`, so timers run on the loop and never start a thread.
    """
    return given or subscribed or TimeoutScheduler.singleton()


def _runs_on_caller_thread(scheduler: abc.SchedulerBase) -> bool:
    # Virtual time runs every action inside start()/advance_*(); a plain
    # AsyncIOScheduler must be used from its loop's thread and runs its timers
    # there. Any other scheduler may call us from a thread of its own.
    if isinstance(scheduler, VirtualTimeScheduler):
        return True
    return isinstance(scheduler, AsyncIOScheduler) and not isinstance(
        scheduler, AsyncIOThreadSafeScheduler
    )


def serialized(scheduler: abc.SchedulerBase) -> Callable[[_F], _F]:
    """A decorator that makes the operator's entry points mutually exclusive.

    Timers of a threaded scheduler fire on another thread while the source keeps
    calling `on_next`; one re-entrant lock per subscription keeps the observer
    grammar (no overlapping calls, nothing reordered). On a scheduler that runs
    timers on the caller's thread it returns the function unchanged, because a
    lock costs more than the rest of a cheap operator's work per event.
    """
    if _runs_on_caller_thread(scheduler):
        return _unchanged
    lock = threading.RLock()
    # Bound acquire/release in try/finally cost about half a `with lock:` here.
    acquire, release = lock.acquire, lock.release

    def wrap(fn: _F) -> _F:
        if fn.__code__.co_argcount == 1:  # on_next, on_error: the hot path

            def locked_one(arg: Any) -> Any:
                acquire()
                try:
                    return fn(arg)
                finally:
                    release()

            return locked_one  # type: ignore[return-value]

        def locked(*args: Any) -> Any:
            acquire()
            try:
                return fn(*args)
            finally:
                release()

        return locked  # type: ignore[return-value]

    return wrap


def _unchanged(fn: _F) -> _F:
    return fn


def check_positive(name: str, value: float, *, integer: bool = False) -> None:
    """Raise a `ValueError` (or `TypeError`) naming `name` unless `value` is positive."""
    kind = "an int" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
