"""`usage_totals`: running token counts, per model and overall."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import attrs
from reactivex import Observable, abc

from ..events import Event, Usage
from ._lean import LeanObservable

__all__ = ["TokenCount", "UsageTotals", "usage_totals"]


@attrs.frozen(slots=True)
class TokenCount:
    """Tokens one model consumed so far.

    Attributes:
        input_tokens: prompt tokens.
        output_tokens: completion tokens.
    """

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


_NO_MODELS: Mapping[str, TokenCount] = MappingProxyType({})


@attrs.frozen(slots=True, kw_only=True)
class UsageTotals:
    """Token counts of a run so far.

    Attributes:
        by_model: counts per model name, in the order the models were first seen
            (a read-only mapping).
        input_tokens: prompt tokens over all models.
        output_tokens: completion tokens over all models.
        total_tokens: input plus output tokens over all models.
    """

    by_model: Mapping[str, TokenCount] = attrs.field(default=_NO_MODELS, hash=False)
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


def usage_totals() -> Callable[[Observable[Event]], Observable[UsageTotals]]:
    """Turn each `Usage` event into the running totals including it.

    Other events are ignored. Child runs count too: their `Usage` events are in
    the stream (put `root_only()` first to count the root run alone). Each value
    is a fresh, immutable `UsageTotals`.

    ```
    source:  -u1-r-u2-T-u3-|     (u = Usage, r/T = other events)
    result:  -s1---s2---s3-|     (s3 = u1 + u2 + u3, per model and overall)
    ```

    Example:
        ```python
        app.run("hi").pipe(ops.usage_totals(), rx_ops.last())   # the run's totals
        ```
    """

    def operator(source: Observable[Event]) -> Observable[UsageTotals]:
        def subscribe(
            observer: abc.ObserverBase[UsageTotals], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            by_model: dict[str, TokenCount] = {}
            totals = [0, 0]

            def on_next(event: Event) -> None:
                if type(event) is not Usage:
                    return
                seen = by_model.get(event.model)
                if seen is None:
                    seen = TokenCount()
                by_model[event.model] = TokenCount(
                    seen.input_tokens + event.input_tokens,
                    seen.output_tokens + event.output_tokens,
                )
                totals[0] += event.input_tokens
                totals[1] += event.output_tokens
                observer.on_next(
                    UsageTotals(
                        by_model=MappingProxyType(dict(by_model)),
                        input_tokens=totals[0],
                        output_tokens=totals[1],
                        total_tokens=totals[0] + totals[1],
                    )
                )

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return LeanObservable(subscribe)

    return operator
