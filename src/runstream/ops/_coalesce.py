"""`coalesce_text`: merge the deltas of one message that arrive close together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from reactivex import Observable, abc

from ..events import AssistantReply, PlannerThought
from ._lean import LeanObservable
from ._scheduling import Timers, check_positive

__all__ = ["coalesce_text"]

_T = TypeVar("_T")


def coalesce_text(
    window: float = 0.05,
    max_chars: int = 4096,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Merge consecutive reply (or thought) deltas of one message into fewer events.

    One merged event is held at a time. Chunks of the same class and
    `message_id` join it while they arrive within `window` seconds of its first
    chunk. It is emitted, in stream order, when
    - any other item arrives (a chunk of another message or class, or any other
      event), just before that item;
    - a chunk with `done=True` joins it (that chunk is part of it);
    - it holds `max_chars` characters or more;
    - `window` seconds have passed since its first chunk;
    - the source completes or fails (before `on_completed` / `on_error`).

    The merged event is the last chunk with the concatenated text, so it carries
    that chunk's `seq`, `ts` and `done`: resuming after its `seq` is exact. Text
    is never lost, split or reordered. Disposing cancels the timer and emits
    nothing more.

    ```
    window = 4 ticks; a, b, c = chunks of messages a, b, c; ! = c's done chunk; T = ToolStart
    source:  -a-a---a-b-T-c!-|
    result:  -----A---A-X--C-|    (A = a chunks merged; X = b, then T; C = c and ! merged)
    ```

    Args:
        window: seconds a merged event may wait for more chunks.
        max_chars: emit as soon as the merged text is at least this long.
        scheduler: the timer's scheduler; by default the one the result is
            subscribed with, else reactivex's `TimeoutScheduler`.

    Raises:
        ValueError: `window` or `max_chars` is not positive.
    """
    check_positive("window", window)
    check_positive("max_chars", max_chars, integer=True)

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribed: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            timers = Timers[None](scheduler, subscribed)
            entry = timers.entry
            emit: Callable[[Any], None] = observer.on_next
            parts: list[str] = []
            last: Any = None  # the newest chunk held, None when nothing is held
            chars = 0

            def flush() -> None:
                nonlocal last, chars
                if last is None:
                    return
                held, text = last, "".join(parts) if len(parts) > 1 else None
                last, chars = None, 0
                parts.clear()
                timers.cancel(None)
                emit(held if text is None else attrs.evolve(held, text=text))

            def on_timer(_: None) -> None:
                flush()

            def hold(chunk: Any) -> None:
                nonlocal last, chars
                text = chunk.text
                if chunk.done or len(text) >= max_chars:
                    emit(chunk)
                    return
                last, chars = chunk, len(text)
                parts.append(text)
                timers.start(None, window, on_timer)

            @entry
            def on_next(item: Any) -> None:
                nonlocal last, chars
                cls = type(item)
                if cls is AssistantReply or cls is PlannerThought:
                    held = last
                    if (
                        held is not None
                        and type(held) is cls
                        and held.message_id == item.message_id
                    ):
                        text = item.text
                        parts.append(text)
                        last = item
                        chars += len(text)
                        if item.done or chars >= max_chars:
                            flush()
                        return
                    flush()
                    if not timers.stopped:
                        hold(item)
                else:
                    flush()
                    if not timers.stopped:
                        emit(item)

            @entry
            def on_error(error: Exception) -> None:
                flush()
                timers.stop()
                observer.on_error(error)

            @entry
            def on_completed() -> None:
                flush()
                timers.stop()
                observer.on_completed()

            return timers.subscribe(source, on_next, on_error, on_completed, subscribed)

        return LeanObservable(subscribe)

    return operator
