"""`latest_progress`: at most one `ToolUpdate` per tool call per window, the latest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc

from ..events import ToolEnd, ToolUpdate
from ._lean import LeanObservable
from ._scheduling import Timers, check_positive

__all__ = ["latest_progress"]

_T = TypeVar("_T")


class _Window:
    """The open window of one tool call: the update it holds back (`Timers` keeps its timer)."""

    __slots__ = ("order", "pending")

    def __init__(self) -> None:
        self.pending: Any = None
        self.order = 0


def latest_progress(
    window: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Throttle `ToolUpdate` events to at most one per tool call per `window` seconds.

    The first update of a call passes at once and opens a window for that call.
    Updates inside the window replace one another; the latest is emitted when
    the window closes, which opens the next window. A window that closes with
    nothing held ends, and the call's next update passes at once again.

    `ToolStart`, `ToolEnd` and every other event pass at once. A `ToolEnd` first
    emits the update its call holds, so no update ever follows its call's
    `ToolEnd`, and it closes that call's window. Completion and errors emit every
    held update first (in the order they arrived). State is one small record per
    call with an open window.

    ```
    window = 3 ticks; a..e = updates of one call, E = its ToolEnd
    source:  -a-b-c-----deE-|
    result:  -a--b--c---d-X-|    (X = e then E, at E's tick)
    ```

    Args:
        window: seconds between two updates of one call.
        scheduler: the timers' scheduler; by default the one the result is
            subscribed with, else reactivex's `TimeoutScheduler`.

    Raises:
        ValueError: `window` is not positive.
    """
    check_positive("window", window)

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribed: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            timers = Timers[str](scheduler, subscribed)
            entry = timers.entry
            emit: Callable[[Any], None] = observer.on_next
            windows: dict[str, _Window] = {}
            arrivals = 0

            def on_close(call_id: str) -> None:
                win = windows.get(call_id)
                if win is None:
                    return
                held = win.pending
                if held is None:
                    del windows[call_id]
                    return
                win.pending = None
                timers.start(call_id, window, on_close)
                emit(held)

            @entry
            def on_next(item: Any) -> None:
                nonlocal arrivals
                cls = type(item)
                if cls is ToolUpdate:
                    call_id = item.tool_call_id
                    win = windows.get(call_id)
                    if win is not None:
                        arrivals += 1
                        win.pending, win.order = item, arrivals
                        return
                    windows[call_id] = _Window()
                    timers.start(call_id, window, on_close)
                elif cls is ToolEnd:
                    win = windows.pop(item.tool_call_id, None)
                    if win is not None:
                        timers.cancel(item.tool_call_id)
                        if win.pending is not None:
                            emit(win.pending)
                            if timers.stopped:
                                return
                emit(item)

            def flush_all() -> None:
                held = sorted(
                    (w for w in windows.values() if w.pending is not None),
                    key=lambda w: w.order,
                )
                for win in held:
                    update, win.pending = win.pending, None
                    if not timers.stopped:  # the observer may dispose us while we emit
                        emit(update)
                timers.stop()
                windows.clear()

            @entry
            def on_error(error: Exception) -> None:
                flush_all()
                observer.on_error(error)

            @entry
            def on_completed() -> None:
                flush_all()
                observer.on_completed()

            return timers.subscribe(source, on_next, on_error, on_completed, subscribed)

        return LeanObservable(subscribe)

    return operator
