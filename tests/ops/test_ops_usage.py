"""usage_totals: running token counts per model and overall."""

from __future__ import annotations

from types import MappingProxyType

import attrs
import pytest
import reactivex

import runstream as rs
from _support.ops import CHILD, Events, on_completed, on_error, on_next, run_hot, timeline
from runstream import ops
from runstream.ops import TokenCount, UsageTotals


def totals_of(events: list[rs.Event]) -> list[UsageTotals]:
    out: list[UsageTotals] = []
    reactivex.from_iterable(events).pipe(ops.usage_totals()).subscribe(out.append)
    return out


def test_running_totals_per_model_and_overall() -> None:
    ev = Events()
    events = [
        ev.workflow(rs.Phase.STARTED),
        ev.usage("big", 100, 20),
        ev.reply("hi"),
        ev.usage("small", 10, 5, run=CHILD),
        ev.usage("big", 50, 30),
        ev.workflow(rs.Phase.COMPLETED),
    ]
    out = totals_of(events)
    assert out == [
        UsageTotals(
            by_model={"big": TokenCount(100, 20)},
            input_tokens=100,
            output_tokens=20,
            total_tokens=120,
        ),
        UsageTotals(
            by_model={"big": TokenCount(100, 20), "small": TokenCount(10, 5)},
            input_tokens=110,
            output_tokens=25,
            total_tokens=135,
        ),
        UsageTotals(
            by_model={"big": TokenCount(150, 50), "small": TokenCount(10, 5)},
            input_tokens=160,
            output_tokens=55,
            total_tokens=215,
        ),
    ]
    assert list(out[-1].by_model) == ["big", "small"]
    assert out[-1].by_model["big"].total_tokens == 200


def test_earlier_values_do_not_change_and_cannot_be_changed() -> None:
    ev = Events()
    out = totals_of([ev.usage("m", 1, 1), ev.usage("m", 2, 2)])
    assert out[0].by_model == {"m": TokenCount(1, 1)}
    assert isinstance(out[0].by_model, MappingProxyType)
    with pytest.raises(TypeError):
        out[0].by_model["m"] = TokenCount(9, 9)  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        out[0].input_tokens = 5  # type: ignore[misc]
    assert hash(out[0]) == hash(attrs.evolve(out[0]))


def test_no_usage_no_values() -> None:
    ev = Events()
    assert totals_of([ev.workflow(rs.Phase.STARTED), ev.reply("x")]) == []
    assert list(timeline(run_hot(ops.usage_totals(), on_completed(210)))) == [(210, "C", None)]


def test_errors_pass_through_after_the_totals_so_far() -> None:
    ev = Events()
    boom = RuntimeError("x")
    got = run_hot(ops.usage_totals(), on_next(210, ev.usage("m", 3, 4)), on_error(220, boom))
    assert list(timeline(got)) == [
        (
            210,
            "N",
            UsageTotals(
                by_model={"m": TokenCount(3, 4)}, input_tokens=3, output_tokens=4, total_tokens=7
            ),
        ),
        (220, "E", boom),
    ]


def test_after_root_only_child_usage_is_not_counted() -> None:
    ev = Events()
    events = [ev.usage("big", 1, 2), ev.usage("small", 10, 20, run=CHILD)]
    out: list[UsageTotals] = []
    reactivex.from_iterable(events).pipe(ops.root_only(), ops.usage_totals()).subscribe(out.append)
    assert [t.total_tokens for t in out] == [3]
