"""attach subscribes a plain reactivex observable without its wrapper, keeping its rules."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as rx
from reactivex.disposable import Disposable

import runstream as rs

pytestmark = pytest.mark.anyio


async def test_an_error_raised_by_an_operator_reaches_wait_after_the_items_before_it() -> None:
    def mapper(i: int) -> int:
        if i == 3:
            raise LookupError("no 3")
        return i * 10

    sink = rs.MemorySink[int]()
    with pytest.raises(LookupError, match="no 3"):
        await rs.drain(reactivex.from_iterable(range(10)).pipe(rx.map(mapper)), sink)
    assert sink.items == [0, 10, 20]
    assert sink.closed


async def test_an_error_raised_while_subscribing_is_the_streams_error() -> None:
    def subscribe(observer: abc.ObserverBase[int], scheduler: Any = None) -> abc.DisposableBase:
        raise OSError("cannot connect")

    sink = rs.MemorySink[int]()
    att = rs.attach(reactivex.create(subscribe), sink)  # does not raise here
    with pytest.raises(OSError, match="cannot connect"):
        await att.wait()
    assert sink.items == []
    assert sink.closed


async def test_nothing_after_the_end_of_a_source_that_breaks_the_rules() -> None:
    def subscribe(observer: abc.ObserverBase[int], scheduler: Any = None) -> None:
        observer.on_next(1)
        observer.on_completed()
        observer.on_next(2)
        observer.on_error(RuntimeError("after the end"))
        observer.on_completed()

    sinks = [rs.MemorySink[int](), rs.MemorySink[int]()]
    stats = await rs.drain(reactivex.create(subscribe), *sinks)
    assert [s.items for s in sinks] == [[1], [1]]
    assert [st.delivered for st in stats] == [1, 1]


@pytest.mark.parametrize("scheduled", [False, True], ids=["at-once", "on-the-loop"])
async def test_the_source_is_disposed_once_it_ended(scheduled: bool) -> None:
    disposed: list[bool] = []

    def subscribe(observer: abc.ObserverBase[int], scheduler: Any = None) -> abc.DisposableBase:
        def emit(*_: Any) -> None:
            observer.on_next(1)
            observer.on_completed()

        if scheduled:
            scheduler.schedule(emit)
        else:
            emit()
        return Disposable(lambda: disposed.append(True))

    sink = rs.MemorySink[int]()
    await rs.drain(reactivex.create(subscribe), sink)
    assert sink.items == [1]
    assert disposed == [True]


async def test_an_observable_with_its_own_subscribe_is_subscribed_through_it() -> None:
    calls: list[str] = []

    class Counted(Observable[int]):
        def subscribe(self, *args: Any, **kwargs: Any) -> abc.DisposableBase:
            calls.append("subscribe")
            return reactivex.of(7, 8).subscribe(*args, **kwargs)

    sink = rs.MemorySink[int]()
    await rs.drain(Counted(), sink)
    assert calls == ["subscribe"]
    assert sink.items == [7, 8]
