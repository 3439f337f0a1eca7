"""`of_type`: keep the events of some classes, typed by those classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from reactivex import Observable, abc

from ..events import Event
from ._lean import LeanObservable

__all__ = ["of_type"]

_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")
_T3 = TypeVar("_T3")
_T4 = TypeVar("_T4")


@overload
def of_type(c1: type[_T1], /) -> Callable[[Observable[Any]], Observable[_T1]]: ...
@overload
def of_type(
    c1: type[_T1], c2: type[_T2], /
) -> Callable[[Observable[Any]], Observable[_T1 | _T2]]: ...
@overload
def of_type(
    c1: type[_T1], c2: type[_T2], c3: type[_T3], /
) -> Callable[[Observable[Any]], Observable[_T1 | _T2 | _T3]]: ...
@overload
def of_type(
    c1: type[_T1], c2: type[_T2], c3: type[_T3], c4: type[_T4], /
) -> Callable[[Observable[Any]], Observable[_T1 | _T2 | _T3 | _T4]]: ...
@overload
def of_type(*classes: type[Event]) -> Callable[[Observable[Any]], Observable[Event]]: ...


def of_type(*classes: type[Any]) -> Callable[[Observable[Any]], Observable[Any]]:
    """Keep the items that are instances of any of `classes`.

    The result is typed by the classes: `of_type(ToolEnd)` gives
    `Observable[ToolEnd]`, `of_type(ToolStart, ToolEnd)` gives
    `Observable[ToolStart | ToolEnd]`; five or more classes give `Observable[Event]`.

    ```
    source:  -r-S-u-E-r-|     (r = AssistantReply, S/u/E = ToolStart/ToolUpdate/ToolEnd)
    of_type(ToolStart, ToolEnd)
    result:  ---S---E---|
    ```

    Args:
        *classes: one or more classes (subclasses count, as with `isinstance`).

    Raises:
        TypeError: no class given, or something that is not a class.

    Example:
        ```python
        ends = app.run("hi").pipe(ops.of_type(rs.ToolEnd))
        ```
    """
    if not classes:
        raise TypeError("of_type() needs at least one class")
    for cls in classes:
        if not isinstance(cls, type):
            raise TypeError(f"of_type() takes classes, got {cls!r}")
    kept = classes[0] if len(classes) == 1 else tuple(classes)

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            emit = observer.on_next

            def on_next(item: Any) -> None:
                if isinstance(item, kept):
                    emit(item)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return LeanObservable(subscribe)

    return operator
