"""`batch`: lists of items, by count or by delay, for sinks that take many at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from ._lean import LeanObservable
from ._scheduling import check_positive, pick_scheduler, serialized

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
            sched = pick_scheduler(scheduler, subscribed)
            entry = serialized(sched)
            emit = observer.on_next
            items: list[_T] = []
            timer: abc.DisposableBase | None = None
            generation = 0  # tells a stale timer from the current one
            stopped = False

            def flush() -> None:
                nonlocal items, timer, generation
                full, items = items, []
                generation += 1
                if timer is not None:
                    timer.dispose()
                    timer = None
                emit(full)

            @entry
            def on_timer(_: abc.SchedulerBase, due: int | None) -> None:
                if due == generation and items and not stopped:
                    flush()

            @entry
            def on_next(item: _T) -> None:
                nonlocal timer
                items.append(item)
                count = len(items)
                if count >= max_items:
                    flush()
                elif count == 1:
                    timer = sched.schedule_relative(max_delay, on_timer, generation)

            @entry
            def on_error(error: Exception) -> None:
                if items:
                    flush()
                stop()
                observer.on_error(error)

            @entry
            def on_completed() -> None:
                if items:
                    flush()
                stop()
                observer.on_completed()

            @entry
            def stop() -> None:
                nonlocal timer, stopped
                stopped = True
                if timer is not None:
                    timer.dispose()
                    timer = None

            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=subscribed)
            return CompositeDisposable(subscription, Disposable(stop))

        return LeanObservable(subscribe)

    return operator
