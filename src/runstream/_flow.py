"""Demand and cancellation shared between a run and whoever consumes it.

A consumer (``async for``, ``attach``, ``stream``) makes a `Flow` and subscribes
inside `subscribing(flow)`. Observables subscribe to their sources synchronously,
so the run at the bottom of any chain of reactivex operators finds the flow in a
context variable even though every operator wraps the observer. The run then
waits in its emit calls while the flow is paused, and honours cancel requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["Flow", "clear_flow", "current_flow", "subscribing"]


class Flow:
    """A demand gate plus a cancel request line, for one subscription.

    Attributes:
        paused: True while any consumer has asked the producer to wait. A plain
            attribute, read on every emit.
        nudged: a consumer that drops instead of blocking asked the producer to
            let other tasks run once.
        cancel_requested: `request_cancel` was called.
    """

    __slots__ = ("_blockers", "_on_cancel", "_waiters", "cancel_requested", "nudged", "paused")

    def __init__(self) -> None:
        self._blockers: set[object] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_cancel: list[Callable[[], None]] = []
        self.cancel_requested = False
        self.nudged = False
        self.paused = False

    def pause(self, key: object) -> None:
        """Ask the producer to wait until `resume(key)`."""
        self._blockers.add(key)
        self.paused = True

    def resume(self, key: object) -> None:
        """Withdraw `key`'s pause; the producer goes on once no pause is left."""
        blockers = self._blockers
        if key in blockers:
            blockers.discard(key)
            if not blockers:
                self.paused = False
                self._wake_next()

    def _wake_next(self) -> None:
        """Let the longest-waiting emitter go; it passes the turn on (see `wait`)."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def nudge(self) -> None:
        """Ask the producer to let other tasks run once, without waiting for room.

        Consumers that drop instead of blocking use it so that a fast sink gets
        to drain its queue before it overflows.
        """
        self.nudged = True

    async def wait(self) -> None:
        """Wait while paused; returns at once when not.

        Waiters go first in, first out, and one at a time, as `asyncio.Queue`
        wakes its putters: a resume wakes the longest-waiting emitter, which
        wakes the next as it leaves while there is still room. A thousand
        parallel emitters blocked on one consumer cost one wake-up per emitter
        that gets to emit, not a thousand per resume.
        """
        if not self.paused:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            while True:
                await waiter
                if not self.paused:
                    break
                # Paused again before this task ran: keep its place at the front.
                waiter = loop.create_future()
                self._waiters.appendleft(waiter)
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and not self.paused:
                self._wake_next()  # this task was given the turn: pass it on
            raise
        if self._waiters:
            self._wake_next()

    @property
    def waiting(self) -> int:
        """How many emitters are waiting for room right now."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    @property
    def bound(self) -> bool:
        """True once a run (or another demand-aware source) listens for cancel requests."""
        return bool(self._on_cancel)

    def request_cancel(self) -> None:
        """Ask the run to stop; it still emits its terminal event."""
        if self.cancel_requested:
            return
        self.cancel_requested = True
        for callback in self._on_cancel:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Called by a run (each run under one flow): `callback` runs on a cancel request."""
        self._on_cancel.append(callback)
        if self.cancel_requested:
            callback()


_CURRENT: ContextVar[Flow | None] = ContextVar("runstream_flow", default=None)


def current_flow() -> Flow | None:
    """The flow of the subscription being made right now, if any."""
    return _CURRENT.get()


def clear_flow() -> None:
    """Forget the current flow in this context (a run's own task starts with none)."""
    _CURRENT.set(None)


@contextlib.contextmanager
def subscribing(flow: Flow | None) -> Iterator[None]:
    """Make `flow` visible to runs subscribed to inside the block."""
    token = _CURRENT.set(flow)
    try:
        yield
    finally:
        _CURRENT.reset(token)
