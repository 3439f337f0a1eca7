"""`attach`: one subscription fanned out to sinks, each with its own bounded queue."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Generic, Literal, TypeVar

import attrs
from reactivex import Observable, abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from .._flow import Flow, subscribing
from ._builtin import describe

__all__ = [
    "Attachment",
    "SinkOverflow",
    "SinkPolicy",
    "SinkStats",
    "attach",
    "drain",
    "with_policy",
]

T = TypeVar("T")
Overflow = Literal["block", "drop_oldest", "drop_newest", "error"]
OnSinkError = Literal["isolate", "cancel"]
_OVERFLOW = ("block", "drop_oldest", "drop_newest", "error")
_ON_SINK_ERROR = ("isolate", "cancel")


class SinkOverflow(Exception):
    """A sink with `overflow="error"` fell `buffer` items behind."""


@attrs.frozen
class SinkStats:
    """What happened at one sink of an attachment.

    Attributes:
        delivered: items the sink accepted (`send` or `send_batch` returned).
        dropped: items discarded by a `drop_*` overflow policy.
        max_queued: the most items that waited in its queue at once.
        error: why the sink was detached, or None.
    """

    delivered: int
    dropped: int
    max_queued: int
    error: BaseException | None


@attrs.frozen
class SinkPolicy:
    """A sink with its own queue size or overflow policy; made by `with_policy`."""

    sink: Any
    buffer: int | None = None
    overflow: Overflow | None = None


def with_policy(
    sink: Any, *, buffer: int | None = None, overflow: Overflow | None = None
) -> SinkPolicy:
    """Give one sink of an `attach` its own `buffer` or `overflow`.

    Example:
        ```python
        att = rs.attach(
            app.run(x),
            rs.JsonlSink("run.jsonl"),  # blocks: the log loses nothing
            rs.with_policy(browser, overflow="drop_oldest", buffer=256),
        )
        ```
    """
    _check(buffer, overflow)
    return SinkPolicy(sink, buffer, overflow)


def _check(buffer: int | None, overflow: str | None) -> None:
    if buffer is not None and (type(buffer) is not int or buffer < 1):
        raise ValueError(f"buffer must be a positive int, got {buffer!r}")
    if overflow is not None and overflow not in _OVERFLOW:
        raise ValueError(f"overflow must be one of {', '.join(_OVERFLOW)}; got {overflow!r}")


class _Pump(Generic[T]):
    """One sink's queue and the task that feeds it."""

    def __init__(self, att: Attachment[T], sink: Any, index: int) -> None:
        self.att = att
        policy = sink if isinstance(sink, SinkPolicy) else SinkPolicy(sink)
        self.sink = policy.sink
        self.buffer = policy.buffer or att.buffer
        self.overflow: Overflow = policy.overflow or att.overflow
        # Pause a little before the queue is full: one emit may become several
        # items after operators (a flushed text chunk plus the event behind it).
        self.high_water = max(1, self.buffer - self.buffer // 16)
        self.low_water = self.buffer // 2
        self.index = index
        self.queue: deque[T] = deque()
        self.batched = callable(getattr(sink, "send_batch", None))
        self.delivered = 0
        self.dropped = 0
        self.max_queued = 0
        self.error: BaseException | None = None
        self.detached = False
        self.finished = False  # no more items will come
        self.busy = False  # inside the sink's send/send_batch
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def offer(self, item: T) -> None:
        if self.detached:
            return
        queue = self.queue
        att = self.att
        if len(queue) >= self.buffer:
            policy = self.overflow
            if policy == "drop_oldest":
                queue.popleft()
                self.dropped += 1
            elif policy == "drop_newest":
                self.dropped += 1
                return
            elif policy == "error":
                self.fail(
                    SinkOverflow(
                        f"sink {self.index} ({describe(self.sink)}) fell {self.buffer} items behind"
                    )
                )
                return
        queue.append(item)
        n = len(queue)
        if n > self.max_queued:
            self.max_queued = n
        if n >= self.high_water:
            if self.overflow == "block":
                att.flow.pause(self)
            else:  # let this sink drain before it overflows, if it can keep up
                att.flow.nudge()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def finish(self) -> None:
        self.finished = True
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def fail(self, error: BaseException) -> None:
        """Detach this sink: record the error, drop its queue, release its pause."""
        if self.detached:
            return
        self.detached = True
        self.error = error
        self.att.errors.append(error)
        self.queue.clear()
        self.att.flow.resume(self)
        self.finish()
        if self.att.on_sink_error == "cancel":
            self.att.cancel()

    async def run(self) -> None:
        queue = self.queue
        sink = self.sink
        att = self.att
        try:
            while True:
                if not queue or att.disposed:
                    if self.finished or att.disposed:
                        break
                    self.waiter = asyncio.get_running_loop().create_future()
                    await self.waiter
                    continue
                if self.batched:
                    items = list(queue)
                    queue.clear()
                    att.flow.resume(self)
                    self.busy = True
                    await sink.send_batch(items)
                    self.busy = False
                    self.delivered += len(items)
                else:
                    item = queue.popleft()
                    if len(queue) <= self.low_water:
                        att.flow.resume(self)
                    self.busy = True
                    await sink.send(item)
                    self.busy = False
                    self.delivered += 1
                if self.detached:
                    break
        except asyncio.CancelledError:
            self.queue.clear()
            self.att.flow.resume(self)
            await self._close()
            raise
        except Exception as exc:
            self.fail(exc)
        await self._close()

    async def _close(self) -> None:
        try:
            await self.sink.close()
        except Exception as exc:
            if self.error is None:
                self.error = exc
                self.att.errors.append(exc)

    def stats(self) -> SinkStats:
        return SinkStats(self.delivered, self.dropped, self.max_queued, self.error)


class Attachment(Generic[T]):
    """A running fan-out of one subscription to several sinks; made by `attach`.

    Attributes:
        errors: the errors of sinks that were detached (`on_sink_error="isolate"`).
    """

    def __init__(
        self,
        sinks: Sequence[Any],
        *,
        buffer: int,
        overflow: Overflow,
        on_sink_error: OnSinkError,
    ) -> None:
        self.buffer = buffer
        self.overflow = overflow
        self.on_sink_error = on_sink_error
        self.flow = Flow()
        self.errors: list[BaseException] = []
        self._pumps = [_Pump(self, sink, i) for i, sink in enumerate(sinks)]
        self._subscription: abc.DisposableBase | None = None
        self._source_error: Exception | None = None
        self._source_done = False
        self.disposed = False

    @property
    def stats(self) -> tuple[SinkStats, ...]:
        """One `SinkStats` per sink, in the order the sinks were given."""
        return tuple(p.stats() for p in self._pumps)

    def _start(self, source: Observable[T]) -> None:
        loop = asyncio.get_running_loop()
        for pump in self._pumps:
            pump.task = loop.create_task(pump.run())
        # One sink: hand items straight to its queue, one call less per item.
        on_next = self._pumps[0].offer if len(self._pumps) == 1 else self._on_next
        with subscribing(self.flow):
            self._subscription = source.subscribe(
                on_next,
                self._on_error,
                self._on_completed,
                scheduler=AsyncIOScheduler(loop),
            )

    def _on_next(self, item: T) -> None:
        for pump in self._pumps:
            pump.offer(item)

    def _on_error(self, error: Exception) -> None:
        self._source_error = error
        self._end_source()

    def _on_completed(self) -> None:
        self._end_source()

    def _end_source(self) -> None:
        self._source_done = True
        for pump in self._pumps:
            pump.finish()

    def cancel(self) -> None:
        """Ask the run to stop: every sink still gets `Workflow(canceled)`, then `close`.

        A source that is not a runstream run cannot end gracefully: it is
        disposed, and the sinks get what was queued, then `close`.
        """
        if self._source_done:
            return
        if self.flow.bound:
            self.flow.request_cancel()
        else:
            self._dispose_source()
            self._end_source()

    def dispose(self) -> None:
        """Stop at once: the run is cancelled, queued items are dropped, sinks closed.

        A sink in the middle of a `send` is interrupted (its task is cancelled);
        every sink still gets its one `close`.
        """
        self._dispose_source()
        self._source_done = True
        self.disposed = True
        for pump in self._pumps:
            pump.queue.clear()
            if pump.busy and pump.task is not None:
                pump.task.cancel()
            else:
                pump.finish()

    def _dispose_source(self) -> None:
        if self._subscription is not None:
            self._subscription.dispose()

    async def wait_closed(self) -> None:
        """Wait until every sink is closed, without raising the source's error."""
        tasks = [p.task for p in self._pumps if p.task is not None]
        if tasks:
            await asyncio.wait(tasks)

    async def wait(self) -> tuple[SinkStats, ...]:
        """Wait until every sink is closed; return `stats`.

        Raises:
            RunFailed: the run failed (after every sink got the failed event and
                was closed); any other error of the source likewise.
        """
        await self.wait_closed()
        if self._source_error is not None:
            raise self._source_error
        return self.stats


def attach(
    source: Observable[T],
    *sinks: Any,
    buffer: int = 1024,
    overflow: Overflow = "block",
    on_sink_error: OnSinkError = "isolate",
) -> Attachment[T]:
    """Subscribe to `source` once (one run) and feed every sink from its own queue.

    Each sink has a bounded queue of `buffer` items and a task of its own; its
    `send` calls never overlap and keep the stream's order; `close` is called
    exactly once, after its last `send`.

    Args:
        source: a run (`app.run(x)`), possibly piped through operators, or any
            observable.
        sinks: objects with `async send(item)` and `async close()`; wrap one in
            `with_policy(sink, buffer=..., overflow=...)` to give it its own.
        buffer: the most items one sink's queue holds.
        overflow: what a full queue does. `"block"`: nothing is lost and the run
            waits in its emit calls (a source that cannot wait, such as a plain
            reactivex observable, keeps every item and the queue grows past
            `buffer`; `stats` shows how far). `"drop_oldest"` / `"drop_newest"`:
            bounded, losses counted in `stats`. `"error"`: the sink fails with
            `SinkOverflow`.
        on_sink_error: `"isolate"`: a sink whose `send` raises is closed and
            detached and its error kept in `errors`; the others and the run go
            on. `"cancel"`: the run is cancelled too.

    Raises:
        ValueError: a bad `buffer`, `overflow` or `on_sink_error`.
        TypeError: a sink without `send` and `close`.
        RuntimeError: no asyncio event loop is running.
    """
    if not sinks:
        raise ValueError("attach needs at least one sink")
    if buffer is None or overflow is None:
        raise ValueError("buffer and overflow cannot be None in attach")
    _check(buffer, overflow)
    if on_sink_error not in _ON_SINK_ERROR:
        raise ValueError(
            f"on_sink_error must be one of {', '.join(_ON_SINK_ERROR)}; got {on_sink_error!r}"
        )
    for i, given in enumerate(sinks):
        sink = given.sink if isinstance(given, SinkPolicy) else given
        if not (callable(getattr(sink, "send", None)) and callable(getattr(sink, "close", None))):
            raise TypeError(f"sink {i} ({describe(sink)}) needs async send(item) and close()")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError("attach needs a running asyncio event loop") from None
    att: Attachment[T] = Attachment(
        sinks, buffer=buffer, overflow=overflow, on_sink_error=on_sink_error
    )
    att._start(source)
    return att


async def drain(
    source: Observable[T],
    *sinks: Any,
    buffer: int = 1024,
    overflow: Overflow = "block",
    on_sink_error: OnSinkError = "isolate",
) -> tuple[SinkStats, ...]:
    """`attach` and wait: returns the sinks' stats once every one is closed.

    Cancelling the task that awaits `drain` disposes the attachment: the run
    stops and every sink is closed before the cancellation goes on.

    Raises:
        RunFailed: the run failed, after every sink got the failed event.
    """
    att = attach(source, *sinks, buffer=buffer, overflow=overflow, on_sink_error=on_sink_error)
    try:
        return await att.wait()
    except asyncio.CancelledError:
        # Whoever awaited drain went away: the run and the sinks stop with it.
        att.dispose()
        await asyncio.shield(att.wait_closed())
        raise
