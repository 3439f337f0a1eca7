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
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["Flow", "clear_flow", "current_flow", "subscribing"]


class Flow:
    """A demand gate plus a cancel request line, for one subscription."""

    __slots__ = ("_blockers", "_on_cancel", "_waiter", "cancel_requested", "nudged")

    def __init__(self) -> None:
        self._blockers: set[object] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._on_cancel: list[Callable[[], None]] = []
        self.cancel_requested = False
        self.nudged = False

    @property
    def paused(self) -> bool:
        """True while any consumer has asked the producer to wait."""
        return bool(self._blockers)

    def pause(self, key: object) -> None:
        """Ask the producer to wait until `resume(key)`."""
        self._blockers.add(key)

    def resume(self, key: object) -> None:
        """Withdraw `key`'s pause; the producer goes on once no pause is left."""
        blockers = self._blockers
        if key in blockers:
            blockers.discard(key)
            waiter = self._waiter
            if not blockers and waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)

    def nudge(self) -> None:
        """Ask the producer to let other tasks run once, without waiting for room.

        Consumers that drop instead of blocking use it so that a fast sink gets
        to drain its queue before it overflows.
        """
        self.nudged = True

    async def wait(self) -> None:
        """Wait while paused; returns at once when not."""
        while self._blockers:
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(waiter)

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
