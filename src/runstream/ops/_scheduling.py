"""The timers of time-based operators: their scheduler, their locking, their lifetime.

`batch`, `coalesce_text` and `latest_progress` each make one `Timers` per
subscription and subscribe to their source through it.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import TimeoutScheduler, VirtualTimeScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

__all__ = ["Timers", "check_positive", "pick_scheduler", "serialized"]

_F = TypeVar("_F", bound=Callable[..., Any])
_K = TypeVar("_K", bound=Hashable)
_T = TypeVar("_T")


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
        arguments = fn.__code__.co_argcount - inspect.ismethod(fn)
        if arguments == 1:  # on_next, on_error: the hot path

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


class _Timer(Generic[_K]):
    __slots__ = ("action", "disposable", "key")

    def __init__(self, key: _K, action: Callable[[_K], None]) -> None:
        self.key = key
        self.action = action
        self.disposable: abc.DisposableBase | None = None

    def dispose(self) -> None:
        if self.disposable is not None:
            self.disposable.dispose()


class Timers(Generic[_K]):
    """The timers of one subscription of a time-based operator, at most one per key.

    It takes the operator's scheduler (`pick_scheduler`), makes the
    subscription's entry points mutually exclusive where timers may fire on
    another thread (decorate them with `entry`; see `serialized`), and never
    runs a timer that was cancelled, replaced or stopped, even one that a
    threaded scheduler had already started. A timer's action runs under
    `entry`. Subscribe through `subscribe`, so that disposing stops the timers.

    Example:
        ```python
        timers = Timers[None](scheduler, subscribed)

        @timers.entry
        def on_next(item): ...  # timers.start(None, delay, on_timer) / timers.cancel(None)

        return timers.subscribe(source, on_next, on_error, on_completed, subscribed)
        ```
    """

    __slots__ = ("_fire", "_pending", "entry", "scheduler", "stop", "stopped")

    def __init__(self, given: abc.SchedulerBase | None, subscribed: abc.SchedulerBase | None):
        self.scheduler = pick_scheduler(given, subscribed)
        self.entry = serialized(self.scheduler)
        self.stopped = False
        self._pending: dict[_K, _Timer[_K]] = {}
        self._fire = self.entry(self._fire_timer)
        self.stop: Callable[[], None] = self.entry(self._stop)

    def start(self, key: _K, delay: float, action: Callable[[_K], None]) -> None:
        """Call `action(key)` in `delay` seconds; replaces `key`'s pending timer.

        Does nothing once stopped.
        """
        if self.stopped:
            return
        self.cancel(key)
        timer = self._pending[key] = _Timer(key, action)
        timer.disposable = self.scheduler.schedule_relative(delay, self._fire, timer)

    def cancel(self, key: _K) -> None:
        """Cancel `key`'s pending timer, if any."""
        timer = self._pending.pop(key, None)
        if timer is not None:
            timer.dispose()

    def _fire_timer(self, _: abc.SchedulerBase, timer: _Timer[_K] | None) -> None:
        if timer is None or self.stopped or self._pending.get(timer.key) is not timer:
            return  # stale: cancelled or replaced after the scheduler picked it up
        del self._pending[timer.key]
        timer.dispose()
        timer.action(timer.key)

    def _stop(self) -> None:
        self.stopped = True
        pending = list(self._pending.values())
        self._pending.clear()
        for timer in pending:
            timer.dispose()

    def subscribe(
        self,
        source: Observable[_T],
        on_next: Callable[[_T], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        scheduler: abc.SchedulerBase | None,
    ) -> abc.DisposableBase:
        """Subscribe to `source`; disposing the result also stops every timer."""
        subscription = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
        return CompositeDisposable(subscription, Disposable(self.stop))
