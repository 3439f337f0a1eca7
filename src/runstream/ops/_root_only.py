"""`root_only`: drop the events of child runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc

from ..events import Event
from ._lean import LeanObservable

__all__ = ["root_only"]

_E = TypeVar("_E", bound=Event)


def root_only() -> Callable[[Observable[_E]], Observable[_E]]:
    """Keep the events of the root run; drop those of child runs.

    A child run (an agent called as a tool) has a `parent_run_id`; the root run
    has none. The parent's own `ToolStart`, `AgentRunStarted` and `ToolEnd` for
    the call stay, since the root run emits them.

    ```
    source:  -a-S-R-c-c-E-a-|     (c = child-run events, R = AgentRunStarted)
    result:  -a-S-R-----E-a-|
    ```

    The element type is kept: `root_only()` after `of_type(ToolEnd)` is still
    `Observable[ToolEnd]`.
    """

    def operator(source: Observable[_E]) -> Observable[_E]:
        def subscribe(
            observer: abc.ObserverBase[_E], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            emit = observer.on_next

            def on_next(event: _E) -> None:
                # `run.parent_run_id` is what the `parent_run_id` property
                # returns, one attribute lookup cheaper.
                if event.run.parent_run_id is None:
                    emit(event)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return LeanObservable(subscribe)

    return operator
