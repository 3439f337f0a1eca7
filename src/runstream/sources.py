"""Cold sources that are not graph runs: replayed files and async iterables.

Both honour the same rules as a run: each subscription starts afresh, a
consumer's demand (`attach` or `drain` with `overflow="block"`) makes them
wait, disposing the subscription stops them, and `async for` iterates them
with a bounded buffer (breaking out of the loop disposes the subscription).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import anyio
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._flow import Flow, clear_flow, current_flow
from ._observable import LeanObservable
from .codec import DecodeError, loads
from .events import Event

__all__ = ["from_async_iterable", "replay_jsonl"]

T = TypeVar("T")
_YIELD_EVERY = 512
_LIVE: set[asyncio.Task[None]] = set()


def from_async_iterable(factory: Callable[[], AsyncIterable[T]]) -> Observable[T]:
    """A cold observable of what `factory()` yields, one iteration per subscription.

    The iteration runs in a task on the subscriber's event loop. It waits while
    a demand-aware consumer is full, and disposing the subscription cancels it
    (an async generator's `finally` runs). An exception from the iterable
    reaches `on_error`. `async for` iterates the observable with a bounded
    buffer; breaking out of the loop cancels the iteration.

    Example:
        ```python
        async def ticks():
            for i in range(3):
                yield i

        await rs.drain(rs.from_async_iterable(ticks), rs.MemorySink())
        async for i in rs.from_async_iterable(ticks):
            print(i)
        ```
    """
    if not callable(factory):
        raise TypeError(
            "from_async_iterable needs a function returning an async iterable "
            f"(e.g. an async generator function), got {type(factory).__name__}"
        )

    def subscribe(
        observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "subscribing to from_async_iterable needs a running asyncio event loop"
            ) from None
        flow = current_flow()
        state = {"disposed": False, "started": False, "stop": False}
        context = contextvars.copy_context()
        context.run(clear_flow)
        task = loop.create_task(_pump(factory, observer, flow, state), context=context)
        _LIVE.add(task)
        task.add_done_callback(_LIVE.discard)

        def stop() -> None:
            state["stop"] = True
            if state["started"]:
                task.cancel()

        if flow is not None:
            flow.on_cancel(stop)

        def dispose() -> None:
            state["disposed"] = True
            task.cancel()

        return Disposable(dispose)

    return LeanObservable(subscribe)


async def _pump(
    factory: Callable[[], AsyncIterable[T]],
    observer: abc.ObserverBase[T],
    flow: Flow | None,
    state: dict[str, bool],
) -> None:
    state["started"] = True
    if state["stop"]:  # cancel was requested before the task ran
        observer.on_completed()
        return
    iterable = factory()
    if not isinstance(iterable, AsyncIterable):
        observer.on_error(
            TypeError(f"the factory returned {type(iterable).__name__}, not an async iterable")
        )
        return
    iterator: AsyncIterator[T] = aiter(iterable)
    count = 0
    try:
        async for item in iterator:
            observer.on_next(item)
            if state["disposed"]:  # by the consumer, from inside on_next
                break
            count += 1
            if flow is not None and (flow.paused or flow.nudged):
                flow.nudged = False
                await flow.wait()
                await anyio.lowlevel.checkpoint()
            elif not count % _YIELD_EVERY:
                await anyio.lowlevel.checkpoint()
    except asyncio.CancelledError:
        # Disposed: stop silently. A cancel request: the stream ends normally.
        if not state["disposed"]:
            observer.on_completed()
        raise
    except Exception as exc:
        if not state["disposed"]:
            observer.on_error(exc)
        return
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
    if not state["disposed"]:
        observer.on_completed()


def replay_jsonl(
    path: str | Path, *, speed: float | None = None, max_pause: float | None = None
) -> Observable[Event]:
    """A cold observable of the events recorded in a JSONL file (see `JsonlSink`).

    Each subscription reads the file from the start; the events are equal to
    the ones recorded. Blank lines are skipped. By default the replay goes as
    fast as its consumer takes the events; with `speed`, it waits before each
    event for the time recorded between it and the one before (their `ts`),
    divided by `speed`.

    Args:
        path: the recording.
        speed: None or 0: as fast as possible; otherwise the pace, relative to
            the recording: 1 replays in real time, 2 twice as fast, 0.5 at
            half speed. An event recorded no later than the one before it is
            not waited for.
        max_pause: with `speed`, the longest wait before one event, in seconds
            (None: no limit), so that a long idle moment in the recording
            does not stall the replay.

    Raises:
        FileNotFoundError: `path` does not exist (raised here, at once).
        ValueError: `speed` is negative or not finite, or `max_pause` is not a
            positive number (raised here, at once).
        DecodeError: through `on_error`, naming the file and line of a bad line.

    Example:
        ```python
        async for event in rs.replay_jsonl("run.jsonl", speed=2):
            print(event)
        ```
    """
    file = Path(path)
    if speed is not None and not (speed >= 0 and math.isfinite(speed)):
        raise ValueError(f"speed must be None, 0 or a positive number, got {speed!r}")
    if max_pause is not None and not max_pause > 0:
        raise ValueError(f"max_pause must be None or a positive number, got {max_pause!r}")
    if not file.is_file():
        raise FileNotFoundError(f"no such JSONL file: {file}")
    limit = math.inf if max_pause is None else max_pause

    def events() -> AsyncIterator[Event]:
        recorded = _recorded(file)
        return _paced(recorded, speed, limit) if speed else recorded

    return from_async_iterable(events)


async def _recorded(file: Path) -> AsyncGenerator[Event, None]:
    # Read in blocks of lines in a worker thread: the loop never waits on the disk.
    async with await anyio.open_file(file, "rb") as handle:
        number = 0
        while chunk := await anyio.to_thread.run_sync(handle.wrapped.readlines, 1 << 16):
            for line in chunk:
                number += 1
                if not line.strip():
                    continue
                try:
                    event = loads(line)
                except DecodeError as exc:
                    raise DecodeError(f"{file}:{number}: {exc}") from None
                yield event


async def _paced(
    events: AsyncGenerator[Event, None], speed: float, max_pause: float
) -> AsyncGenerator[Event, None]:
    """`events`, each after the recorded time since the latest before it, divided by `speed`."""
    latest: float | None = None
    async with contextlib.aclosing(events):  # closing the pacing closes the file
        async for event in events:
            if latest is not None and event.ts > latest:
                await anyio.sleep(min((event.ts - latest) / speed, max_pause))
            latest = event.ts if latest is None else max(latest, event.ts)
            yield event
