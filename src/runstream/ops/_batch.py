"""`batch`: lists of items, by count or by delay, for sinks that take many at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc

from ._lean import LeanObservable
from ._scheduling import Timers, check_positive

__all__ = ["batch"]

_T = TypeVar("_T")


def batch(
    max_items: int,
    max_delay: float,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[list[_T]]]:
    """Group items into lists of at most `max_items`, held at most `max_delay` seconds.

    A list is emitted when it reaches `max_items`, `max_delay` seconds after its
    first item arrived, when the source completes, or just before the source's
    error is passed on. Empty lists are never emitted. The per-item cost is an
    append and a length check; one timer is started per list, not per item.

    ```
    batch(max_items=3, max_delay=4 ticks)
    source:  -a-b-c-d-------e---|
    result:  -----X-----Y-------Z    (X = [a, b, c]; Y = [d], 4 ticks after d;
                                      Z = [e], then completion)
    ```

    Args:
        max_items: the largest list emitted.
        max_delay: seconds the first item of a list may wait.
        scheduler: the timer's scheduler; by default the one the result is
            subscribed with, else reactivex's `TimeoutScheduler`.

    Raises:
        ValueError: `max_items` or `max_delay` is not positive.
        TypeError: `max_items` is not an int, or `max_delay` not a number.
    """
    check_positive("max_items", max_items, integer=True)
    check_positive("max_delay", max_delay)

    def operator(source: Observable[_T]) -> Observable[list[_T]]:
        def subscribe(
            observer: abc.ObserverBase[list[_T]], subscribed: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            timers = Timers[None](scheduler, subscribed)
            entry = timers.entry
            emit = observer.on_next
            items: list[_T] = []

            def flush() -> None:
                nonlocal items
                full, items = items, []
                timers.cancel(None)
                emit(full)

            def on_timer(_: None) -> None:
                if items:
                    flush()

            @entry
            def on_next(item: _T) -> None:
                items.append(item)
                count = len(items)
                if count >= max_items:
                    flush()
                elif count == 1:
                    timers.start(None, max_delay, on_timer)

            @entry
            def on_error(error: Exception) -> None:
                if items:
                    flush()
                timers.stop()
                observer.on_error(error)

            @entry
            def on_completed() -> None:
                if items:
                    flush()
                timers.stop()
                observer.on_completed()

            return timers.subscribe(source, on_next, on_error, on_completed, subscribed)

        return LeanObservable(subscribe)

    return operator
