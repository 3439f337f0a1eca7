"""An observable that hands plain callbacks straight to its operator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc

__all__ = ["LeanObservable"]

_T = TypeVar("_T")


def _raise(error: Exception) -> None:
    raise error


def _nothing() -> None:
    pass


class _Callbacks(Generic[_T]):
    """The three callbacks as an observer, with no wrapper around each call."""

    __slots__ = ("on_completed", "on_error", "on_next")

    def __init__(
        self,
        on_next: Callable[[_T], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> None:
        self.on_next = on_next
        self.on_error = on_error
        self.on_completed = on_completed


class LeanObservable(Observable[_T]):
    """The observable every runstream operator returns.

    Subscribed with plain callbacks (as operators subscribe to their sources),
    it skips reactivex's `AutoDetachObserver`, which costs a call per layer on
    every item. Our operators keep the observer grammar themselves: nothing
    after completion, an error or disposal. Subscribed with an observer object,
    it behaves as any `Observable`. It can also be iterated with `async for`,
    like the run it comes from.
    """

    def __aiter__(self) -> AsyncIterator[_T]:
        """`async for` over a piped run: bounded, demand-aware; `break` cancels the run."""
        from ..graph._stream import iterate

        return iterate(self)

    def subscribe(
        self,
        on_next: abc.ObserverBase[_T] | Callable[[_T], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        if on_next is None or isinstance(on_next, abc.ObserverBase):
            return super().subscribe(on_next, on_error, on_completed, scheduler=scheduler)
        observer: Any = _Callbacks(on_next, on_error or _raise, on_completed or _nothing)
        return self._subscribe_core(observer, scheduler)
