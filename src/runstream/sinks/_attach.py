"""`attach`: one subscription fanned out to sinks, each with its own bounded queue."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Generic, Literal, TypeVar

import attrs
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from .._flow import Flow, subscribing
from ._builtin import Sink, describe

__all__ = [
    "Attachment",
    "SinkOverflow",
    "SinkPolicy",
    "SinkStats",
    "SinkTimeout",
    "attach",
    "drain",
    "with_policy",
]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
Overflow = Literal["block", "drop_oldest", "drop_newest", "error"]
OnSinkError = Literal["isolate", "cancel"]
_OVERFLOW = ("block", "drop_oldest", "drop_newest", "error")
_ON_SINK_ERROR = ("isolate", "cancel")


class SinkOverflow(Exception):
    """A sink with `overflow="error"` fell `buffer` items behind."""


class SinkTimeout(Exception):
    """A sink spent more than `close_timeout` seconds in one call while the stream ended.

    The call (`send`, `send_batch` or `close`) was cancelled and the sink
    abandoned; this error is in `att.errors` and in the sink's `SinkStats.error`.
    """


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
class SinkPolicy(Generic[T_contra]):
    """A sink with its own queue size or overflow policy; made by `with_policy`."""

    sink: Sink[T_contra]
    buffer: int | None = None
    overflow: Overflow | None = None


def with_policy(
    sink: Sink[T], *, buffer: int | None = None, overflow: Overflow | None = None
) -> SinkPolicy[T]:
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


def _check_timeout(close_timeout: float) -> None:
    if isinstance(close_timeout, bool) or not isinstance(close_timeout, int | float):
        raise TypeError(f"close_timeout must be a number of seconds, got {close_timeout!r}")
    if not (close_timeout > 0 and math.isfinite(close_timeout)):
        raise ValueError(f"close_timeout must be positive and finite, got {close_timeout!r}")


def _defined_at(sink: object, name: str) -> int:
    """How far down the sink's class hierarchy `name` is defined (-1: on the instance)."""
    if name in getattr(sink, "__dict__", ()):
        return -1
    mro = type(sink).__mro__
    for depth, cls in enumerate(mro):
        if name in vars(cls):
            return depth
    return len(mro)  # made up by __getattr__: as far away as can be


def uses_send_batch(sink: object) -> bool:
    """Whether `attach` hands `sink` its items through `send_batch` rather than `send`.

    Only when `send_batch` is defined at least as close to the sink's class as
    `send`: a subclass that overrides `send` gets its items there, even if a
    base class (such as `MemorySink`) defines `send_batch`.
    """
    if not callable(getattr(sink, "send_batch", None)):
        return False
    return _defined_at(sink, "send_batch") <= _defined_at(sink, "send")


class _Pump(Generic[T]):
    """One sink's queue and the task that feeds it.

    The hot path is `offer` (called by the source for every item) and
    `_send_each` / `_send_batches` (the pump task). `offer` takes an item with
    one length check while the queue is below `limit`; everything else (a new
    `max_queued`, the high-water mark, overflow, a finished or detached sink)
    happens in `_offer_slow`. The pump looks at `alert` once per item: it is
    True only while this pump holds the run paused or the stream is ending.
    """

    def __init__(self, att: Attachment[T], given: Sink[T] | SinkPolicy[T], index: int) -> None:
        self.att = att
        policy = given if isinstance(given, SinkPolicy) else SinkPolicy(given)
        self.sink: Sink[T] = policy.sink
        self.buffer = policy.buffer or att.buffer
        self.overflow: Overflow = policy.overflow or att.overflow
        # Pause a little before the queue is full: one emit may become several
        # items after operators (a flushed text chunk plus the event behind it).
        self.high_water = max(1, self.buffer - self.buffer // 16)
        self.low_water = self.buffer // 2
        self.index = index
        self.queue: deque[T] = deque()
        self.batched = uses_send_batch(self.sink)
        self.delivered = 0
        self.dropped = 0
        self.max_queued = 0
        self.limit = 0  # `offer` appends at once while len(queue) < limit; -1: takes nothing
        self.error: BaseException | None = None
        self.detached = False
        self.finished = False  # no more items will come
        self.holding = False  # this pump paused the run
        self.ending = False  # the stream is ending: calls into the sink are timed
        self.alert = False  # holding or ending
        self.started = False
        self.closing = False  # inside (or past) the sink's close
        self.abandoned = False  # cancelled by the close_timeout watchdog
        self.waiter: asyncio.Future[None] | None = None  # set while idle, waiting for items
        self.task: asyncio.Task[None] | None = None
        self.watchdog: asyncio.TimerHandle | None = None

    # --- the source's side ----------------------------------------------------------

    def offer(self, item: T) -> None:
        queue = self.queue
        if len(queue) < self.limit:
            queue.append(item)
            if self.waiter is not None:
                self._wake()
            return
        self._offer_slow(item)

    def _offer_slow(self, item: T) -> None:
        if self.finished:  # the source ended, was disposed, or this sink is detached
            return
        queue = self.queue
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
                if not self.holding:
                    self.holding = self.alert = True
                    self.att.flow.pause(self)
            else:  # let this sink drain before it overflows, if it can keep up
                self.att.flow.nudge()
        # Below both the known maximum and the high-water mark, `offer` needs no check.
        self.limit = min(self.max_queued, self.high_water - 1)
        if self.waiter is not None:
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def finish(self) -> None:
        """No more items: deliver what is queued, then close."""
        self.finished = True
        self.limit = -1
        self._wake()

    def _release(self) -> None:
        if self.holding:
            self.holding = False
            self.alert = self.ending
            self.att.flow.resume(self)

    def fail(self, error: BaseException) -> None:
        """Detach this sink: record the error, drop its queue, release its pause."""
        if self.detached:
            return
        self.detached = True
        self.error = error
        self.att.errors.append(error)
        self.queue.clear()
        self._release()
        self.finish()
        if self.att.on_sink_error == "cancel":
            self.att.cancel()

    # --- ending: close_timeout ------------------------------------------------------

    def begin_ending(self, loop: asyncio.AbstractEventLoop, close_timeout: float) -> None:
        """From now on no call into the sink may last longer than `close_timeout`."""
        self.ending = self.alert = True
        if self._in_call():
            # A call may be under way: it gets close_timeout from now. Calls that
            # start later are timed by `_timed`.
            self.watchdog = loop.call_later(close_timeout, self._expire, self.delivered)

    def _in_call(self) -> bool:
        """Whether the pump may be inside `send` or `send_batch` (started, not idle or closing)."""
        task = self.task
        return (
            self.started
            and not self.closing
            and self.waiter is None
            and task is not None
            and not task.done()
        )

    def _expire(self, delivered: int) -> None:
        task = self.task
        if not self._in_call() or self.delivered != delivered or task is None:
            return  # that call returned
        self.abandoned = True
        self.fail(self._timeout_error("send_batch" if self.batched else "send"))
        task.cancel()

    def _timeout_error(self, call: str) -> SinkTimeout:
        return SinkTimeout(
            f"sink {self.index} ({describe(self.sink)}) spent more than "
            f"close_timeout={self.att.close_timeout:g}s in {call}; abandoned"
        )

    async def _timed(self, call: Coroutine[Any, Any, None], name: str) -> None:
        """Await `call` for at most close_timeout, else raise `SinkTimeout`."""
        timeout = asyncio.timeout(self.att.close_timeout)
        try:
            async with timeout:
                await call
        except TimeoutError:
            if timeout.expired():
                raise self._timeout_error(name) from None
            raise  # the sink's own TimeoutError

    # --- the pump task ----------------------------------------------------------------

    async def run(self) -> None:
        self.started = True
        task = asyncio.current_task()
        assert task is not None
        try:
            await self._deliver()
        except asyncio.CancelledError as exc:
            if not task.cancelling():
                self.fail(exc)  # raised by the sink itself: a sink error like any other
            elif not (self.abandoned and task.uncancel() == 0):
                # Really cancelled (dispose, or the loop shutting down): close, go on.
                self.queue.clear()
                self._release()
                await self._close()
                raise
        except (KeyboardInterrupt, SystemExit) as exc:
            self.fail(exc)
            await self._close()
            raise
        except BaseException as exc:  # any failure of the sink detaches it
            self.fail(exc)
        await self._close()

    async def _deliver(self) -> None:
        queue = self.queue
        loop = asyncio.get_running_loop()
        pump = self._send_batches if self.batched else self._send_each
        while True:
            if queue:
                await pump()
            elif self.finished:
                return
            else:
                waiter = self.waiter = loop.create_future()
                try:
                    await waiter
                finally:
                    self.waiter = None

    async def _send_each(self) -> None:
        queue = self.queue
        popleft = queue.popleft
        send = self.sink.send
        low_water = self.low_water
        while queue:
            item = popleft()
            if self.alert:
                if self.holding and len(queue) <= low_water:
                    self._release()
                if self.ending:
                    await self._timed(send(item), "send")
                    self.delivered += 1
                    continue
            await send(item)
            self.delivered += 1

    async def _send_batches(self) -> None:
        queue = self.queue
        send_batch: Callable[[list[T]], Coroutine[Any, Any, None]] = self.sink.send_batch  # type: ignore[attr-defined]
        while queue:
            items = list(queue)
            queue.clear()
            if self.alert:
                self._release()
                if self.ending:
                    await self._timed(send_batch(items), "send_batch")
                    self.delivered += len(items)
                    continue
            await send_batch(items)
            self.delivered += len(items)

    async def _close(self) -> None:
        self.closing = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        try:
            await self._timed(self.sink.close(), "close")
        except asyncio.CancelledError as exc:
            if task.cancelling() > cancelling:
                raise  # really cancelled while closing
            self._close_failed(exc)
        except (KeyboardInterrupt, SystemExit) as exc:
            self._close_failed(exc)
            raise
        except BaseException as exc:
            self._close_failed(exc)

    def _close_failed(self, error: BaseException) -> None:
        self.att.errors.append(error)
        if self.error is None:
            self.error = error

    def stats(self) -> SinkStats:
        return SinkStats(self.delivered, self.dropped, self.max_queued, self.error)


class _Observer:
    """The three callbacks as an observer, with no wrapper around each call."""

    __slots__ = ("on_completed", "on_error", "on_next")

    def __init__(
        self,
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> None:
        self.on_next = on_next
        self.on_error = on_error
        self.on_completed = on_completed


def _as_disposable(subscription: object) -> abc.DisposableBase:
    """What a subscribe function returned, as a disposable (reactivex accepts three forms)."""
    if subscription is None:
        return Disposable()
    if isinstance(subscription, abc.DisposableBase) or hasattr(subscription, "dispose"):
        return subscription  # type: ignore[return-value]
    return Disposable(subscription)  # type: ignore[arg-type]


class Attachment(Generic[T]):
    """A running fan-out of one subscription to several sinks; made by `attach`.

    Attributes:
        errors: the errors of sinks that were detached (`on_sink_error="isolate"`)
            or abandoned (`SinkTimeout`), and of `close` calls that failed.
    """

    def __init__(
        self,
        sinks: Sequence[Sink[T] | SinkPolicy[T]],
        *,
        buffer: int,
        overflow: Overflow,
        on_sink_error: OnSinkError,
        close_timeout: float = 5.0,
    ) -> None:
        self.buffer = buffer
        self.overflow = overflow
        self.on_sink_error = on_sink_error
        self.close_timeout = close_timeout
        self.flow = Flow()
        self.errors: list[BaseException] = []
        self._pumps = [_Pump(self, sink, i) for i, sink in enumerate(sinks)]
        self._subscription: abc.DisposableBase | None = None
        self._source_error: Exception | None = None
        self._source_done = False
        self._detach_on_end = False
        self._ending = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def stats(self) -> tuple[SinkStats, ...]:
        """One `SinkStats` per sink, in the order the sinks were given."""
        return tuple(p.stats() for p in self._pumps)

    def _start(self, source: Observable[T]) -> None:
        loop = self._loop = asyncio.get_running_loop()
        for pump in self._pumps:
            pump.task = loop.create_task(pump.run())
        # One sink: hand items straight to its queue, one call less per item.
        on_next = self._pumps[0].offer if len(self._pumps) == 1 else self._on_next
        with subscribing(self.flow):
            subscription = self._subscribe(source, on_next, AsyncIOScheduler(loop))
        self._subscription = subscription
        if self._source_done and self._detach_on_end:
            subscription.dispose()

    def _subscribe(
        self, source: Observable[T], on_next: Callable[[T], None], scheduler: abc.SchedulerBase
    ) -> abc.DisposableBase:
        if getattr(type(source), "subscribe", None) is not Observable.subscribe:
            # A runstream observable (or any that subscribes its own way): it
            # takes plain callbacks with no wrapper of its own.
            return source.subscribe(
                on_next, self._on_error, self._on_completed, scheduler=scheduler
            )
        # A plain reactivex observable (what `reactivex.operators` return):
        # `subscribe` would wrap the callbacks in an AutoDetachObserver, a call
        # more on every item. Call its subscribe function directly and keep
        # that wrapper's rules here: nothing after the end (the pumps drop it),
        # an error raised while subscribing is the stream's error, and the
        # subscription is disposed once the source ends.
        self._detach_on_end = True
        observer: Any = _Observer(on_next, self._on_error, self._on_completed)
        try:
            subscription = source._subscribe_core(observer, scheduler)
        except Exception as exc:
            if self._source_done:
                raise
            self._on_error(exc)
            return Disposable()
        return _as_disposable(subscription)

    def _on_next(self, item: T) -> None:
        for pump in self._pumps:
            pump.offer(item)

    def _on_error(self, error: Exception) -> None:
        if self._source_done:
            return
        self._source_error = error
        self._end_source()

    def _on_completed(self) -> None:
        if not self._source_done:
            self._end_source()

    def _end_source(self) -> None:
        self._source_done = True
        for pump in self._pumps:
            pump.finish()
        self._begin_ending()
        if self._detach_on_end and self._subscription is not None:
            self._subscription.dispose()

    def _begin_ending(self) -> None:
        """The stream is ending: start counting close_timeout for every sink."""
        if self._ending or self._loop is None:
            return
        self._ending = True
        for pump in self._pumps:
            pump.begin_ending(self._loop, self.close_timeout)

    def cancel(self) -> None:
        """Ask the run to stop: every sink still gets `Workflow(canceled)`, then `close`.

        A source that is not a runstream run cannot end gracefully: it is
        disposed, and the sinks get what was queued, then `close`. From now on
        a sink that spends more than `close_timeout` seconds in one call is
        abandoned.
        """
        if self._source_done:
            return
        self._begin_ending()
        if self.flow.bound:
            self.flow.request_cancel()
        else:
            self._dispose_source()
            self._end_source()

    def dispose(self) -> None:
        """Stop at once: the run is cancelled, queued items are dropped, sinks closed.

        A sink in the middle of a `send` is interrupted (its task is cancelled);
        every sink still gets its one `close`, which may last `close_timeout`
        seconds at most. Never waits.
        """
        self._dispose_source()
        self._source_done = True
        self._begin_ending()
        for pump in self._pumps:
            pump.queue.clear()
            pump._release()
            if pump._in_call() and pump.task is not None:
                pump.task.cancel()  # inside a call into the sink: interrupt it
            pump.finish()

    def _dispose_source(self) -> None:
        if self._subscription is not None:
            self._subscription.dispose()

    def _tasks(self) -> list[asyncio.Task[None]]:
        return [p.task for p in self._pumps if p.task is not None]

    async def wait_closed(self) -> None:
        """Wait until every sink is closed, without raising the source's error."""
        tasks = self._tasks()
        if tasks:
            await asyncio.wait(tasks)
            _retrieved(tasks)

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
    *sinks: Sink[T] | SinkPolicy[T],
    buffer: int = 1024,
    overflow: Overflow = "block",
    on_sink_error: OnSinkError = "isolate",
    close_timeout: float = 5.0,
) -> Attachment[T]:
    """Subscribe to `source` once (one run) and feed every sink from its own queue.

    Each sink has a bounded queue of `buffer` items and a task of its own; its
    `send` calls never overlap and keep the stream's order; `close` is called
    exactly once, after its last `send`.

    Args:
        source: a run (`app.run(x)`), possibly piped through operators, or any
            observable.
        sinks: objects with `async send(item)` and `async close()` (`Sink[T]`);
            wrap one in `with_policy(sink, buffer=..., overflow=...)` to give it
            its own. A sink of a wider item type fits (a `Sink[Event]` takes an
            `Observable[ToolEnd]`).
        buffer: the most items one sink's queue holds.
        overflow: what a full queue does. `"block"`: nothing is lost and the run
            waits in its emit calls (a source that cannot wait, such as a plain
            reactivex observable, keeps every item and the queue grows past
            `buffer`; `stats` shows how far). `"drop_oldest"` / `"drop_newest"`:
            bounded, losses counted in `stats`. `"error"`: the sink fails with
            `SinkOverflow`.
        on_sink_error: `"isolate"`: a sink whose `send` raises (any exception,
            `CancelledError` raised by the sink included) is closed and
            detached and its error kept in `errors`; the others and the run go
            on. `"cancel"`: the run is cancelled too. `KeyboardInterrupt` and
            `SystemExit` still propagate, after the sink's `close`.
        close_timeout: seconds a sink may spend in one call once the stream is
            ending (the source ended, or `cancel` or `dispose` was called), and
            in its `close` at any time. A sink that takes longer is abandoned:
            the call is cancelled, the sink closed (if the hung call was a
            `send`), and `SinkTimeout` recorded.

    Raises:
        ValueError: a bad `buffer`, `overflow`, `on_sink_error` or `close_timeout`.
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
    _check_timeout(close_timeout)
    for i, given in enumerate(sinks):
        sink = given.sink if isinstance(given, SinkPolicy) else given
        if not (callable(getattr(sink, "send", None)) and callable(getattr(sink, "close", None))):
            raise TypeError(f"sink {i} ({describe(sink)}) needs async send(item) and close()")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError("attach needs a running asyncio event loop") from None
    att: Attachment[T] = Attachment(
        sinks,
        buffer=buffer,
        overflow=overflow,
        on_sink_error=on_sink_error,
        close_timeout=close_timeout,
    )
    att._start(source)
    return att


async def drain(
    source: Observable[T],
    *sinks: Sink[T] | SinkPolicy[T],
    buffer: int = 1024,
    overflow: Overflow = "block",
    on_sink_error: OnSinkError = "isolate",
    close_timeout: float = 5.0,
) -> tuple[SinkStats, ...]:
    """`attach` and wait: returns the sinks' stats once every one is closed.

    Cancelling the task that awaits `drain` disposes the attachment: the run
    stops and every sink is closed (each within `close_timeout`) before the
    cancellation goes on.

    Raises:
        RunFailed: the run failed, after every sink got the failed event.
    """
    att = attach(
        source,
        *sinks,
        buffer=buffer,
        overflow=overflow,
        on_sink_error=on_sink_error,
        close_timeout=close_timeout,
    )
    try:
        return await att.wait()
    except asyncio.CancelledError:
        # Whoever awaited drain went away: the run and the sinks stop with it.
        att.dispose()
        await _closed_despite_cancellation(att._tasks())
        raise


async def _closed_despite_cancellation(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the pumps even if cancelled again meanwhile (a cancel scope retries).

    The wait is bounded: after `dispose`, every pump is done within close_timeout.
    """
    while not all(task.done() for task in tasks):
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            continue
    _retrieved(tasks)


def _retrieved(tasks: list[asyncio.Task[None]]) -> None:
    """Mark the pumps' outcomes as seen.

    A pump ends with an exception only for `KeyboardInterrupt` or `SystemExit`
    raised by its sink, which asyncio has already sent out of the event loop;
    left unretrieved, asyncio would log it a second time when the task is
    collected.
    """
    for task in tasks:
        if not task.cancelled():
            task.exception()
