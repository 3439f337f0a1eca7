"""Observables that runstream hands out: lean subscription and `async for`.

Every `Observable` runstream returns (a run, an operator's result, a replay, a
bus or remote stream) is a `LeanObservable`: subscribed with plain callbacks it
skips reactivex's `AutoDetachObserver`, and `async for` iterates it with a
bounded buffer whose demand reaches the run; breaking out of the loop disposes
the subscription.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from ._flow import Flow, subscribing

__all__ = ["Buffer", "LeanObservable", "iterable", "iterate"]

T = TypeVar("T")


def raise_error(error: Exception) -> None:
    """The default `on_error`: re-raise."""
    raise error


def nothing() -> None:
    """The default `on_completed`."""


class _Callbacks(Generic[T]):
    """The three callbacks as an observer, with no wrapper around each call."""

    __slots__ = ("on_completed", "on_error", "on_next")

    def __init__(
        self,
        on_next: Callable[[T], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> None:
        self.on_next = on_next
        self.on_error = on_error
        self.on_completed = on_completed


class LeanObservable(Observable[T]):
    """An observable that hands plain callbacks straight to its subscribe function.

    Subscribed with plain callbacks (as operators subscribe to their sources),
    it skips reactivex's `AutoDetachObserver`, which costs a call per layer on
    every item; the subscribe function keeps the observer grammar itself
    (nothing after completion, an error or disposal). Subscribed with an
    observer object, it behaves as any `Observable`. `async for` iterates it
    with a bounded, demand-aware buffer; `break` disposes the subscription.
    """

    def __aiter__(self) -> AsyncIterator[T]:
        """`async for` over the stream: bounded, demand-aware; `break` disposes it."""
        return iterate(self)

    def subscribe(
        self,
        on_next: abc.ObserverBase[T] | Callable[[T], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        if on_next is None or isinstance(on_next, abc.ObserverBase):
            return super().subscribe(on_next, on_error, on_completed, scheduler=scheduler)
        observer: Any = _Callbacks(on_next, on_error or raise_error, on_completed or nothing)
        return self._subscribe_core(observer, scheduler)


class _Wrapped(LeanObservable[T]):
    """Any observable, made iterable with `async for`."""

    def __init__(self, source: Observable[T]) -> None:
        super().__init__()
        self._source = source

    def subscribe(
        self,
        on_next: abc.ObserverBase[T] | Callable[[T], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        return self._source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)


def iterable(source: Observable[T]) -> LeanObservable[T]:
    """`source` as a `LeanObservable` (itself when it already is one)."""
    return source if isinstance(source, LeanObservable) else _Wrapped(source)


async def iterate(source: Observable[T], buffer: int = 1024) -> AsyncIterator[T]:
    """Iterate any observable with a bounded buffer whose demand reaches the run.

    Leaving the loop disposes the subscription, which cancels the run.
    """
    pending = Buffer[T](buffer)
    subscription = pending.subscribe(source)
    try:
        while True:
            chunk = await pending.take()
            if chunk is None:
                return
            for item in chunk:
                yield item
    finally:
        subscription.dispose()


class Buffer(Generic[T]):
    """The bounded buffer behind `async for` and a run's `stream()`."""

    __slots__ = ("_flow", "_items", "_limit", "_waiter", "done", "error")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"buffer must be at least 1, got {limit}")
        self._limit = limit
        self._items: list[T] = []
        self._waiter: asyncio.Future[None] | None = None
        self._flow = Flow()
        self.done = False
        self.error: Exception | None = None

    def subscribe(self, source: Observable[T]) -> abc.DisposableBase:
        """Subscribe to `source` under this buffer's flow."""
        scheduler = AsyncIOScheduler(asyncio.get_running_loop())
        with subscribing(self._flow):
            return source.subscribe(
                self._on_next, self._on_error, self._on_completed, scheduler=scheduler
            )

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _on_next(self, item: T) -> None:
        items = self._items
        items.append(item)
        if len(items) >= self._limit:
            self._flow.pause(self)
        if self._waiter is not None:
            self._wake()

    def _on_error(self, error: Exception) -> None:
        self.error = error
        self.done = True
        self._wake()

    def _on_completed(self) -> None:
        self.done = True
        self._wake()

    async def take(self) -> list[T] | None:
        """Everything buffered, waiting for something; None at the end."""
        while not self._items:
            if self.done:
                if self.error is not None:
                    raise self.error
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        chunk = self._items
        self._items = []
        self._flow.resume(self)
        return chunk
