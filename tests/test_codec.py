"""The JSON wire format: round trips, exact shape, decode errors, fuzzing, encode errors."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import random
import re
import tracemalloc
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runstream as rs
from runstream import codec
from runstream.codec import DecodeError, EncodeError, dumps, from_dict, jsonable, loads, to_dict

TAGS = [cls.type for cls in rs.EVENT_TYPES]
PHASE_VALUES = [p.value for p in rs.Phase]
BASE_KEYS = {"type", "run_id", "agent", "parent_run_id", "thread_id", "node", "seq", "ts"}


def own_fields(cls: type[Any]) -> list[str]:
    return [f.name for f in attrs.fields(cls) if f.name not in ("run", "node", "seq", "ts")]


# --- strategies -------------------------------------------------------------------

text = st.text(max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
error_infos = st.none() | st.builds(rs.ErrorInfo, type=text, message=text, retryable=st.booleans())
tool_calls = st.builds(rs.ToolCall, tool_call_id=text, tool_name=text, payload=json_values)
runs = st.builds(
    rs.RunInfo,
    run_id=text,
    agent=text,
    parent_run_id=st.none() | text,
    thread_id=st.none() | text,
)

OWN_STRATEGIES: dict[type[Any], dict[str, st.SearchStrategy[Any]]] = {
    rs.AssistantReply: {
        "text": text,
        "message_id": text,
        "done": st.booleans(),
        "internal": st.booleans(),
    },
    rs.PlannerThought: {
        "text": text,
        "message_id": text,
        "done": st.booleans(),
        "internal": st.booleans(),
    },
    rs.ToolStart: {"tool_call_id": text, "tool_name": text, "payload": json_values},
    rs.ToolUpdate: {
        "tool_call_id": text,
        "tool_name": text,
        "progress": st.none() | finite,
        "message": st.none() | text,
        "data": json_values,
    },
    rs.ToolEnd: {
        "tool_call_id": text,
        "tool_name": text,
        "result": json_values,
        "error": error_infos,
        "duration": finite,
    },
    rs.Usage: {
        "model": text,
        "input_tokens": st.integers(min_value=0),
        "output_tokens": st.integers(min_value=0),
    },
    rs.Workflow: {"phase": st.sampled_from(rs.Phase), "error": error_infos},
    rs.AgentRunStarted: {
        "tool_call_id": text,
        "tool_name": text,
        "child_run_id": text,
        "child_agent": text,
    },
    rs.AwaitClarification: {
        "request_id": text,
        "question": text,
        "tool_call": st.none() | tool_calls,
    },
    rs.AwaitExternalTools: {
        "request_id": text,
        "calls": st.lists(tool_calls, max_size=3).map(tuple),
    },
    rs.StateUpdate: {"updates": st.dictionaries(text, json_values, max_size=4)},
    rs.Custom: {"name": text, "data": json_values},
}


def events_of(cls: type[Any]) -> st.SearchStrategy[Any]:
    return st.builds(
        cls,
        run=runs,
        node=st.none() | text,
        seq=st.integers(min_value=0),
        ts=finite,
        **OWN_STRATEGIES[cls],
    )


events = st.one_of(*[events_of(cls) for cls in rs.EVENT_TYPES])


def test_strategies_cover_every_field() -> None:
    for cls in rs.EVENT_TYPES:
        assert set(OWN_STRATEGIES[cls]) == set(own_fields(cls)), cls


# --- round trip -------------------------------------------------------------------


@pytest.mark.parametrize("cls", rs.EVENT_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(cls: type[Any], data: st.DataObject) -> None:
    # 12 classes x 60 examples: 720 round trips.
    ev = data.draw(events_of(cls))
    wire = to_dict(ev)
    assert wire["type"] == cls.type
    assert set(wire) == BASE_KEYS | set(own_fields(cls))
    assert "run" not in wire
    for key in ("run_id", "agent", "parent_run_id", "thread_id"):
        assert wire[key] == getattr(ev, key)
    assert from_dict(wire) == ev
    encoded = dumps(ev)
    assert isinstance(encoded, bytes)
    assert json.loads(encoded) == wire
    back = loads(encoded)
    assert type(back) is cls
    assert back == ev
    assert loads(encoded.decode()) == ev


@settings(max_examples=300, deadline=None)
@given(ev=events)
def test_round_trip_through_every_input_kind(ev: Any) -> None:
    encoded = dumps(ev)
    assert loads(bytearray(encoded)) == ev
    assert loads(memoryview(encoded)) == ev
    assert from_dict(json.loads(encoded)) == ev


def test_phase_and_calls_are_plain_json_on_the_wire() -> None:
    ev = rs.AwaitExternalTools(
        run_id="r",
        agent="a",
        seq=0,
        ts=1.0,
        request_id="q",
        calls=(rs.ToolCall("c1", "search", {"q": "x"}),),
    )
    assert to_dict(ev)["calls"] == [
        {"tool_call_id": "c1", "tool_name": "search", "payload": {"q": "x"}}
    ]
    wf = rs.Workflow(run_id="r", agent="a", seq=0, ts=1.0, phase=rs.Phase.COMPLETED)
    assert json.loads(dumps(wf))["phase"] == "completed"
    assert loads(dumps(wf)).phase is rs.Phase.COMPLETED


def test_wire_form_of_a_tool_end() -> None:
    ev = rs.ToolEnd(
        run=rs.RunInfo(run_id="r1", agent="researcher", parent_run_id="r0", thread_id="t1"),
        node="search",
        seq=7,
        ts=1767225600.5,
        tool_call_id="call_1",
        tool_name="search",
        result=["sky", {"color": "blue", "n": 2, "ok": True, "x": None}],
        error=rs.ErrorInfo("TimeoutError", "slow", retryable=True),
        duration=0.25,
    )
    expected = {
        "type": "tool_end",
        "run_id": "r1",
        "agent": "researcher",
        "parent_run_id": "r0",
        "thread_id": "t1",
        "node": "search",
        "seq": 7,
        "ts": 1767225600.5,
        "tool_call_id": "call_1",
        "tool_name": "search",
        "result": ["sky", {"color": "blue", "n": 2, "ok": True, "x": None}],
        "error": {"type": "TimeoutError", "message": "slow", "retryable": True},
        "duration": 0.25,
    }
    assert to_dict(ev) == expected
    assert json.loads(dumps(ev)) == expected
    assert b" " not in dumps(ev).replace(b'"', b"")  # compact separators
    assert loads(json.dumps(expected)) == ev


def test_dumps_is_utf8_not_ascii_escaped() -> None:
    ev = rs.AssistantReply(run_id="r", agent="a", seq=0, ts=1.0, text="héllo ☀", message_id="m")
    assert "héllo ☀".encode() in dumps(ev)


def test_unknown_keys_are_ignored() -> None:
    wire = {
        "type": "custom",
        "run_id": "r",
        "agent": "a",
        "seq": 0,
        "ts": 1.0,
        "name": "n",
        "added_in_v2": {"x": 1},
        "run": "ignored",
    }
    assert from_dict(wire) == rs.Custom(run_id="r", agent="a", seq=0, ts=1.0, name="n")


def test_optional_fields_may_be_absent_on_the_wire() -> None:
    wire = {"type": "tool_end", "run_id": "r", "agent": "a", "seq": 0, "ts": 2}
    ev = from_dict({**wire, "tool_call_id": "c", "tool_name": "t"})
    assert ev == rs.ToolEnd(run_id="r", agent="a", seq=0, ts=2.0, tool_call_id="c", tool_name="t")
    assert ev.parent_run_id is None
    assert ev.thread_id is None
    assert ev.node is None
    assert ev.error is None
    assert ev.result is None


# --- decode errors ----------------------------------------------------------------

TOOL_END = {
    "type": "tool_end",
    "run_id": "r1",
    "agent": "a",
    "parent_run_id": None,
    "thread_id": None,
    "node": "n",
    "seq": 1,
    "ts": 10.0,
    "tool_call_id": "c1",
    "tool_name": "search",
    "result": None,
    "error": None,
    "duration": 0.5,
}


def with_(base: dict[str, Any], **changes: Any) -> str:
    d = {**base, **changes}
    return json.dumps(d)


def without(base: dict[str, Any], *keys: str) -> str:
    return json.dumps({k: v for k, v in base.items() if k not in keys})


CUSTOM_JSON = json.dumps(
    {"type": "custom", "run_id": "r", "agent": "a", "seq": 0, "ts": 1, "name": "n", "data": None}
)
WORKFLOW = {"type": "workflow", "run_id": "r", "agent": "a", "seq": 0, "ts": 1.0}
AWAIT = {"type": "await_external_tools", "run_id": "r", "agent": "a", "seq": 0, "ts": 1.0}
AWAIT["request_id"] = "q"
USAGE = {"type": "usage", "run_id": "r", "agent": "a", "seq": 0, "ts": 1.0, "model": "m"}
USAGE.update(input_tokens=1, output_tokens=2)

DECODE_CASES: list[tuple[str, str | bytes, list[str]]] = [
    ("garbage", b"not json at all", ["not JSON"]),
    ("empty", b"", ["not JSON"]),
    ("truncated", with_(TOOL_END)[:-3], ["not JSON"]),
    ("invalid-utf8", b'{"type": "\xff\xfe"}', ["not JSON", "utf-8"]),
    ("array", "[1, 2]", ["expected a JSON object", "array"]),
    ("number", "42", ["expected a JSON object", "integer"]),
    ("float", "4.5", ["expected a JSON object", "number"]),
    ("string", '"tool_end"', ["expected a JSON object", "string"]),
    ("null", "null", ["expected a JSON object", "null"]),
    ("bool", "true", ["expected a JSON object", "boolean"]),
    ("missing-type", without(TOOL_END, "type"), ["missing field 'type'", *TAGS]),
    ("null-type", with_(TOOL_END, type=None), ["missing field 'type'"]),
    ("unknown-type", with_(TOOL_END, type="tool_ended"), ["'tool_ended'", *TAGS]),
    ("numeric-type", with_(TOOL_END, type=5), ["unknown event type 5", *TAGS]),
    ("list-type", with_(TOOL_END, type=["tool_end"]), ["unknown event type", *TAGS]),
    ("missing-field", without(TOOL_END, "tool_name"), ["tool_end", "missing field 'tool_name'"]),
    (
        "missing-fields",
        without(TOOL_END, "tool_call_id", "tool_name"),
        ["missing fields", "'tool_call_id'", "'tool_name'"],
    ),
    ("missing-run_id", without(TOOL_END, "run_id"), ["'run_id'"]),
    ("missing-agent", without(TOOL_END, "agent"), ["'agent'"]),
    ("missing-seq", without(TOOL_END, "seq"), ["'seq'"]),
    ("missing-ts", without(TOOL_END, "ts"), ["'ts'"]),
    ("missing-phase", json.dumps(WORKFLOW), ["workflow", "'phase'"]),
    ("seq-string", with_(TOOL_END, seq="1"), ["field 'seq'", "expected integer", "string"]),
    ("seq-float", with_(TOOL_END, seq=1.0), ["field 'seq'", "expected integer"]),
    ("seq-bool", with_(TOOL_END, seq=True), ["field 'seq'", "boolean"]),
    ("seq-negative", with_(TOOL_END, seq=-1), ["field 'seq'", ">= 0", "-1"]),
    ("ts-bool", with_(TOOL_END, ts=True), ["field 'ts'", "expected number", "boolean"]),
    ("ts-string", with_(TOOL_END, ts="now"), ["field 'ts'", "string"]),
    ("ts-overflow", with_(TOOL_END)[:-1] + ', "ts": 1' + "0" * 400 + "}", ["field 'ts'"]),
    ("ts-1e999", with_(TOOL_END)[:-1] + ', "ts": 1e999}', ["1e999", "out of range"]),
    ("run_id-null", with_(TOOL_END, run_id=None), ["field 'run_id'", "null"]),
    ("agent-int", with_(TOOL_END, agent=3), ["field 'agent'", "integer"]),
    ("parent-int", with_(TOOL_END, parent_run_id=5), ["field 'parent_run_id'"]),
    ("thread-list", with_(TOOL_END, thread_id=[]), ["field 'thread_id'"]),
    ("node-object", with_(TOOL_END, node={}), ["field 'node'"]),
    ("tool_name-int", with_(TOOL_END, tool_name=1), ["field 'tool_name'"]),
    ("duration-string", with_(TOOL_END, duration="fast"), ["field 'duration'"]),
    (
        "error-type-int",
        with_(TOOL_END, error={"type": 1, "message": "m"}),
        ["field 'error.type'", "expected string"],
    ),
    (
        "error-type-missing",
        with_(TOOL_END, error={"message": "m"}),
        ["field 'error.type'", "missing"],
    ),
    (
        "error-retryable",
        with_(TOOL_END, error={"type": "T", "message": "m", "retryable": "yes"}),
        ["field 'error.retryable'", "boolean"],
    ),
    ("error-string", with_(TOOL_END, error="boom"), ["field 'error"]),
    ("error-list", with_(TOOL_END, error=[1]), ["field 'error"]),
    ("phase-unknown", with_(WORKFLOW, phase="done"), ["field 'phase'", "'done'", *PHASE_VALUES]),
    ("phase-int", with_(WORKFLOW, phase=1), ["field 'phase'", *PHASE_VALUES]),
    ("phase-list", with_(WORKFLOW, phase=["started"]), ["field 'phase'"]),
    ("phase-upper", with_(WORKFLOW, phase="COMPLETED"), ["field 'phase'", "'COMPLETED'"]),
    (
        "calls0-missing",
        with_(AWAIT, calls=[{"tool_call_id": "c"}]),
        ["field 'calls[0].tool_name'"],
    ),
    (
        "calls1-wrong",
        with_(
            AWAIT,
            calls=[{"tool_call_id": "c", "tool_name": "t"}, {"tool_call_id": 1, "tool_name": "t"}],
        ),
        ["field 'calls[1].tool_call_id'", "expected string"],
    ),
    ("calls0-string", with_(AWAIT, calls=["c"]), ["field 'calls[0]"]),
    ("calls-int", with_(AWAIT, calls=5), ["field 'calls'"]),
    (
        "updates-list",
        json.dumps({**WORKFLOW, "type": "state_update", "updates": []}),
        ["field 'updates'", "expected object"],
    ),
    ("tokens-string", with_(USAGE, input_tokens="3"), ["field 'input_tokens'", "expected integer"]),
    ("tokens-float", with_(USAGE, output_tokens=2.5), ["field 'output_tokens'"]),
    (
        "progress-string",
        json.dumps({**TOOL_END, "type": "tool_update", "progress": "50%"}),
        ["field 'progress'"],
    ),
    (
        "done-string",
        json.dumps(
            {**TOOL_END, "type": "assistant_reply", "text": "", "message_id": "m", "done": "yes"}
        ),
        ["field 'done'", "boolean"],
    ),
    ("nan-ts", with_(TOOL_END)[:-1] + ', "ts": NaN}', ["not JSON", "NaN"]),
    (
        "infinity-duration",
        with_(TOOL_END)[:-1] + ', "duration": Infinity}',
        ["not JSON", "Infinity"],
    ),
    (
        "neg-infinity-result",
        with_(TOOL_END)[:-1] + ', "result": [-Infinity]}',
        ["not JSON", "-Infinity"],
    ),
    ("nan-in-data", '{"type": "custom", "data": {"x": NaN}}', ["not JSON", "NaN"]),
    ("deep-arrays", "[" * 100_000, ["not JSON", "nested too deeply"]),
    ("deep-arrays-closed", "[" * 100_000 + "]" * 100_000, ["not JSON", "nested too deeply"]),
    ("deep-objects", '{"a":' * 100_000, ["not JSON"]),
    (
        "deep-in-event",
        with_(TOOL_END)[:-1] + ', "result": ' + "[" * 100_000 + "]" * 100_000 + "}",
        ["not JSON", "nested too deeply"],
    ),
    ("huge-int", "9" * 5000, ["not JSON", "digits"]),
    (
        "huge-int-seq",
        with_(TOOL_END)[:-1] + ', "seq": ' + "9" * 5000 + "}",
        ["not JSON", "digits"],
    ),
    ("huge-int-data", '{"type": "custom", "data": ' + "1" * 100_000 + "}", ["not JSON"]),
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [(d, e) for _, d, e in DECODE_CASES],
    ids=[name for name, _, _ in DECODE_CASES],
)
def test_decode_errors_name_the_problem(data: str | bytes, expected: list[str]) -> None:
    with pytest.raises(DecodeError) as info:
        loads(data)
    message = str(info.value)
    for part in expected:
        assert part in message, (part, message)
    assert len(message) < 2000


@pytest.mark.parametrize(
    "obj",
    [None, 1, "x", [TOOL_END], {1: 2}, {"type": "custom"}, {**TOOL_END, "seq": math.nan}],
    ids=["none", "int", "str", "list", "int-key", "bare", "nan-seq"],
)
def test_from_dict_raises_only_decode_error(obj: Any) -> None:
    with pytest.raises(DecodeError):
        from_dict(obj)


def test_from_dict_rejects_non_finite_floats() -> None:
    with pytest.raises(DecodeError, match="field 'ts'"):
        from_dict({**TOOL_END, "ts": math.inf})
    with pytest.raises(DecodeError, match="field 'duration'"):
        from_dict({**TOOL_END, "duration": math.nan})


def test_error_types_are_value_errors_and_exported() -> None:
    assert issubclass(DecodeError, ValueError)
    assert issubclass(EncodeError, ValueError)
    assert rs.DecodeError is codec.DecodeError
    assert rs.EncodeError is codec.EncodeError


# A mistyped `calls` must not pass just because it is an empty iterable.
@pytest.mark.parametrize("calls", ["", {}], ids=["empty-string", "empty-object"])
def test_calls_must_be_an_array(calls: Any) -> None:
    with pytest.raises(DecodeError, match="field 'calls'"):
        loads(with_(AWAIT, calls=calls))


# Whatever loads accepts, dumps must encode again: no 1e999 or lone surrogates in and stuck.
@pytest.mark.parametrize(
    "raw",
    [
        with_(TOOL_END)[:-1] + ', "result": 1e999}',
        with_(TOOL_END)[:-1] + ', "result": {"x": [-1e400]}}',
        CUSTOM_JSON.replace('"data": null', '"data": 1e999'),
        CUSTOM_JSON.replace('"name": "n"', '"name": "\\ud800"'),
        CUSTOM_JSON.replace('"data": null', '"data": {"k": "\\udfff"}'),
    ],
    ids=[
        "result-1e999",
        "nested-1e400",
        "data-1e999",
        "lone-surrogate-name",
        "lone-surrogate-data",
    ],
)
def test_a_decoded_event_encodes_again(raw: str) -> None:
    try:
        ev = loads(raw)
    except DecodeError:
        return  # rejecting the input is also fine
    assert loads(dumps(ev)) == ev


# --- fuzzing: nothing but DecodeError comes out of loads ---------------------------


def check_loads(data: str | bytes) -> None:
    """`loads` returns an event or raises DecodeError with a message; nothing else.

    An event it returns encodes again, to an equal event.
    """
    try:
        result: object = loads(data)
    except DecodeError as exc:
        result = str(exc)
    if isinstance(result, str):
        assert result
    else:
        assert isinstance(result, rs.EVENT_TYPES)
        assert loads(dumps(result)) == result


def check_from_dict(obj: Any) -> None:
    try:
        result: object = from_dict(obj)
    except DecodeError as exc:
        result = str(exc)
    assert isinstance(result, rs.EVENT_TYPES) or (isinstance(result, str) and result)


FIELD_NAMES = sorted(
    BASE_KEYS | {name for cls in rs.EVENT_TYPES for name in own_fields(cls)} | {"run"}
)
weird_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities become literals on the wire
    | text
    | st.sampled_from(TAGS + PHASE_VALUES),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | text, children, max_size=6)
    ),
    max_leaves=8,
)
event_like = st.builds(
    lambda tag, fields: {"type": tag, **fields},
    st.sampled_from(TAGS),
    st.dictionaries(st.sampled_from(FIELD_NAMES), weird_json, max_size=6),
)


@settings(max_examples=1200, deadline=None)
@given(data=st.binary(max_size=300))
def test_fuzz_bytes(data: bytes) -> None:
    check_loads(data)


@settings(max_examples=1200, deadline=None)
@given(data=st.text(max_size=300))
def test_fuzz_text(data: str) -> None:
    check_loads(data)


@settings(max_examples=800, deadline=None)
@given(obj=weird_json | event_like)
def test_fuzz_json_values(obj: Any) -> None:
    check_loads(json.dumps(obj))
    check_from_dict(obj)


@st.composite
def mutated_events(draw: st.DrawFn) -> str | bytes:
    ev = draw(events)
    raw = dumps(ev)
    wire = json.loads(raw)
    kind = draw(st.sampled_from(["drop", "replace", "retag", "add", "truncate", "byte"]))
    if kind == "drop":
        for key in draw(st.lists(st.sampled_from(sorted(wire)), min_size=1, max_size=3)):
            wire.pop(key, None)
    elif kind == "replace":
        wire[draw(st.sampled_from(sorted(wire)))] = draw(weird_json)
    elif kind == "retag":
        wire["type"] = draw(st.sampled_from(TAGS) | text | weird_json)
    elif kind == "add":
        wire[draw(st.sampled_from(FIELD_NAMES) | text)] = draw(weird_json)
    elif kind == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    else:
        i = draw(st.integers(0, len(raw) - 1))
        return raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1 :]
    return json.dumps(wire)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_events())
def test_fuzz_mutated_events(data: str | bytes) -> None:
    check_loads(data)


SEED_EVENTS: list[Any] = [
    rs.AssistantReply(run_id="r", agent="a", seq=0, ts=1.0, text="hi", message_id="m", done=True),
    rs.PlannerThought(run_id="r", agent="a", seq=1, ts=1.5, text="hm", message_id="m2"),
    rs.ToolStart(
        run_id="r",
        agent="a",
        node="n",
        seq=2,
        ts=2.0,
        tool_call_id="c",
        tool_name="t",
        payload={"q": [1, "x"]},
    ),
    rs.ToolUpdate(
        run_id="r",
        agent="a",
        seq=3,
        ts=2.5,
        tool_call_id="c",
        tool_name="t",
        progress=0.5,
        message="half",
        data={"k": None},
    ),
    rs.ToolEnd(
        run_id="r",
        agent="a",
        seq=4,
        ts=3.0,
        tool_call_id="c",
        tool_name="t",
        result=[1],
        error=rs.ErrorInfo("E", "m", True),
        duration=1.0,
    ),
    rs.Usage(run_id="r", agent="a", seq=5, ts=3.5, model="m", input_tokens=3, output_tokens=4),
    rs.Workflow(
        run_id="r", agent="a", seq=6, ts=4.0, phase=rs.Phase.FAILED, error=rs.ErrorInfo("E", "m")
    ),
    rs.AgentRunStarted(
        run_id="r",
        agent="a",
        parent_run_id="p",
        thread_id="t",
        seq=7,
        ts=4.5,
        tool_call_id="c",
        tool_name="t",
        child_run_id="r2",
        child_agent="b",
    ),
    rs.AwaitClarification(run_id="r", agent="a", seq=8, ts=5.0, request_id="q", question="?"),
    rs.AwaitClarification(
        run_id="r",
        agent="a",
        seq=8,
        ts=5.0,
        request_id="q",
        question="Send it?",
        tool_call=rs.ToolCall("c1", "send_mail", {"to": "ann"}),
    ),
    rs.AwaitExternalTools(
        run_id="r",
        agent="a",
        seq=9,
        ts=5.5,
        request_id="q",
        calls=(rs.ToolCall("c", "t", {"a": 1}), rs.ToolCall("d", "u")),
    ),
    rs.StateUpdate(run_id="r", agent="a", seq=10, ts=6.0, updates={"answer": "x", "n": [1, 2]}),
    rs.Custom(run_id="r", agent="a", seq=11, ts=6.5, name="n", data={"deep": [{"x": [1.5]}]}),
]
TOKENS = [
    *(b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1", b"null", b"true", b"[]", b"{}"),
    *(b'"', b"\\", b"\\ud800", b"\xff", b"\xc3", b"[" * 60, b"9" * 5000, b",", b":"),
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(12 if depth < 3 else 8)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**70), 7])
    if pick == 3:
        return rng.choice([0.5, -0.0, 1e300, math.nan, math.inf, -math.inf])
    if pick == 4:
        return rng.choice(["", "x", "\u2603", "\ud800", "completed", *TAGS])
    if pick == 5:
        return rng.choice(PHASE_VALUES)
    if pick == 6:
        return rng.choice(FIELD_NAMES)
    if pick == 7:
        return [0] * rng.randrange(3)
    if pick in (8, 9):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELD_NAMES): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def mutate(rng: random.Random, ev: Any) -> str | bytes:
    raw = dumps(ev)
    wire = json.loads(raw)
    op = rng.randrange(9)
    if op == 0:
        for _ in range(rng.randrange(1, 4)):
            wire.pop(rng.choice(sorted(wire)), None)
    elif op == 1:
        wire[rng.choice(sorted(wire))] = random_json(rng)
    elif op == 2:
        wire["type"] = rng.choice([*TAGS, "", "TOOL_END", None, 1, [], {}])
    elif op == 3:
        # nested damage inside error / calls / updates and friends
        key = rng.choice(sorted(wire))
        wire[key] = {"type": random_json(rng), "message": random_json(rng), "x": random_json(rng)}
        if rng.random() < 0.5:
            wire[key] = [wire[key], random_json(rng)]
    elif op == 4:
        return raw[: rng.randrange(len(raw))]
    elif op == 5:
        i = rng.randrange(len(raw))
        return raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1 :]
    elif op == 6:
        i = rng.randrange(len(raw))
        return raw[:i] + rng.choice(TOKENS) + raw[i:]
    elif op == 7:
        i, j = sorted(rng.randrange(len(raw)) for _ in range(2))
        return raw[:i] + raw[j:]
    else:
        wire = random_json(rng)
    try:
        return json.dumps(wire, ensure_ascii=rng.random() < 0.5)
    except ValueError:  # circular or otherwise undumpable: use the original bytes
        return raw


def test_fuzz_seeded_mutations() -> None:
    rng = random.Random(20_260_101)
    count = 0
    for _ in range(2_000):
        for ev in SEED_EVENTS:
            data = mutate(rng, ev)
            if rng.random() < 0.3 and isinstance(data, str):
                data = data.encode("utf-8", "surrogatepass")
            check_loads(data)
            count += 1
    assert count >= 20_000


# --- encoding ---------------------------------------------------------------------


def custom(data: Any) -> rs.Custom:
    return rs.Custom(run_id="r", agent="a", seq=0, ts=1.0, name="n", data=data)


class Color(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("ev", "expected"),
    [
        (custom({"a": [1, {2}]}), ["field 'data.a[1]'", "set"]),
        (custom({"a": [1, object()]}), ["field 'data.a[1]'", "object"]),
        (custom({"a": [1, math.nan]}), ["field 'data.a[1]'", "nan"]),
        (custom({"a": [1, {"b": -math.inf}]}), ["field 'data.a[1].b'", "inf"]),
        (custom({"a": {1: "x"}}), ["field 'data.a'", "dict key 1"]),
        (custom({(1, 2): "x"}), ["field 'data'", "dict key"]),
        (custom(math.inf), ["field 'data'", "inf"]),
        (custom(b"raw"), ["field 'data'", "bytes"]),
        (custom([[[{"x": {1, 2}}]]]), ["field 'data[0][0][0].x'", "set"]),
        (
            rs.ToolStart(
                run_id="r",
                agent="a",
                seq=0,
                tool_call_id="c",
                tool_name="t",
                payload={"items": [0, 1, b"x"]},
            ),
            ["field 'payload.items[2]'", "bytes"],
        ),
        (
            rs.ToolEnd(
                run_id="r", agent="a", seq=0, tool_call_id="c", tool_name="t", result={1, 2}
            ),
            ["field 'result'", "set"],
        ),
        (
            rs.ToolUpdate(
                run_id="r",
                agent="a",
                seq=0,
                tool_call_id="c",
                tool_name="t",
                data=[Color.RED, object()],
            ),
            ["field 'data[1]'"],
        ),
        (
            rs.StateUpdate(run_id="r", agent="a", seq=0, updates={"k": {1, 2}}),
            ["field 'updates.k'", "set"],
        ),
        (rs.StateUpdate(run_id="r", agent="a", seq=0, updates={1: "v"}), ["field 'updates'"]),
    ],
    ids=[
        "set",
        "object",
        "nan",
        "neg-inf",
        "int-key",
        "tuple-key",
        "inf-top",
        "bytes",
        "deep-set",
        "payload",
        "result",
        "tool-update-data",
        "updates",
        "updates-key",
    ],
)
def test_encode_errors_name_the_field(ev: Any, expected: list[str]) -> None:
    for encode in (to_dict, dumps):
        with pytest.raises(EncodeError) as info:
            encode(ev)
        for part in expected:
            assert part in str(info.value), (part, str(info.value))


def test_self_referencing_data_is_an_encode_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="field 'data'"):
        dumps(custom(loop))


def test_to_dict_of_a_non_event_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match="not a runstream event"):
        to_dict(rs.ErrorInfo("T", "m"))


# ToolCall payloads inside AwaitExternalTools.calls get the same JSON check as payloads.
@pytest.mark.parametrize(
    "payload", [{"a": {1, 2}}, {"a": math.nan}, {"a": object()}], ids=["set", "nan", "object"]
)
def test_encode_error_for_bad_tool_call_payload(payload: Any) -> None:
    ev = rs.AwaitExternalTools(
        run_id="r",
        agent="a",
        seq=0,
        ts=1.0,
        request_id="q",
        calls=(rs.ToolCall("c", "t", payload),),
    )
    with pytest.raises(EncodeError, match=r"calls\[0\]\.payload"):
        dumps(ev)


# Non-finite numbers in plain float fields are an EncodeError naming the field.
@pytest.mark.parametrize(
    ("ev", "field"),
    [
        (rs.Custom(run_id="r", agent="a", seq=0, ts=math.nan, name="n"), "ts"),
        (
            rs.ToolEnd(
                run_id="r", agent="a", seq=0, tool_call_id="c", tool_name="t", duration=math.inf
            ),
            "duration",
        ),
        (
            rs.ToolUpdate(
                run_id="r", agent="a", seq=0, tool_call_id="c", tool_name="t", progress=math.nan
            ),
            "progress",
        ),
    ],
    ids=["ts", "duration", "progress"],
)
def test_encode_error_for_non_finite_float_fields(ev: Any, field: str) -> None:
    with pytest.raises(EncodeError, match=f"field '{field}'"):
        dumps(ev)


# A lone surrogate (valid in a Python str, not in UTF-8) must not escape as UnicodeEncodeError.
def test_lone_surrogate_is_encoded_or_an_encode_error() -> None:
    ev = rs.Custom(run_id="r", agent="a", seq=0, ts=1.0, name="n", data={"k": "\ud800"})
    try:
        raw = dumps(ev)
    except EncodeError as exc:
        message = str(exc)
        assert "field 'data.k'" in message
    else:
        assert loads(raw) == ev


# --- jsonable ---------------------------------------------------------------------


class Level(enum.IntEnum):
    LOW = 1


@dataclasses.dataclass
class Point:
    x: int
    y: tuple[int, ...]


def test_jsonable_converts_tuples_enums_attrs_and_dataclasses() -> None:
    assert jsonable((1, (2, 3))) == [1, [2, 3]]
    assert type(jsonable((1,))) is list
    assert jsonable(rs.Phase.COMPLETED) == "completed"
    assert type(jsonable(rs.Phase.COMPLETED)) is str
    assert jsonable({"lvl": Level.LOW, "c": Color.RED}) == {"lvl": 1, "c": "red"}
    assert jsonable(rs.ErrorInfo("T", "m")) == {"type": "T", "message": "m", "retryable": False}
    assert jsonable([rs.ToolCall("c", "t", {"q": (1,)})]) == [
        {"tool_call_id": "c", "tool_name": "t", "payload": {"q": [1]}}
    ]
    assert jsonable(Point(1, (2, 3))) == {"x": 1, "y": [2, 3]}
    assert jsonable({"p": Point(0, ())}) == {"p": {"x": 0, "y": []}}
    assert jsonable(None) is None
    assert jsonable("s") == "s"
    assert jsonable(1.5) == 1.5


def test_jsonable_returns_a_copy() -> None:
    source: dict[str, Any] = {"a": [1, {"b": [2]}], "c": "s", "d": {"e": 1}}
    out = jsonable(source)
    assert out == source
    assert out is not source
    source["a"][1]["b"].append(3)
    source["a"].append(9)
    source["d"]["e"] = 2
    source["c"] = "t"
    source["new"] = 1
    assert out == {"a": [1, {"b": [2]}], "c": "s", "d": {"e": 1}}


def test_to_dict_does_not_share_mutable_data_with_the_event() -> None:
    data: dict[str, Any] = {"items": [1, 2]}
    ev = custom(data)
    wire = to_dict(ev)
    wire["data"]["items"].append(3)
    assert ev.data == {"items": [1, 2]}


def test_jsonable_error_names_the_given_field() -> None:
    with pytest.raises(EncodeError, match=r"field 'value\.a\[1\]'"):
        jsonable({"a": [1, {2}]})
    with pytest.raises(EncodeError, match=r"field 'payload\.items\[2\]'"):
        jsonable({"items": [0, 1, object()]}, "payload")


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            '{"type":"tool_end","run_id":"r","agent":"a","seq":0,"ts":1,'
            '"tool_call_id":"x","tool_name":"n","error":"boom"}',
            "field 'error': expected object, got string 'boom'",
        ),
        (
            '{"type":"await_external_tools","run_id":"r","agent":"a","seq":0,"ts":1,'
            '"request_id":"x","calls":["c"]}',
            "field 'calls[0]': expected object, got string 'c'",
        ),
    ],
)
def test_nested_objects_of_the_wrong_kind_are_named(doc: str, expected: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(expected)):
        loads(doc)


def test_from_dict_rejects_python_values_json_cannot_carry() -> None:
    obj = {"type": "custom", "run_id": "r", "agent": "a", "seq": 0, "ts": 1.0, "name": "x"}
    with pytest.raises(DecodeError, match="field 'data': inf is not a finite number"):
        from_dict({**obj, "data": float("inf")})


def test_string_enum_keys_become_their_values() -> None:
    assert jsonable({rs.Phase.STARTED: 1}) == {"started": 1}


# --- hostile input: one DecodeError, in time linear in the input --------------------


def test_bad_calls_stop_at_the_first_bad_element() -> None:
    # cattrs used to build one exception per bad element before reporting any:
    # 10**6 bad calls took minutes. Only the first is looked at now.
    obj = {**EXTERNAL_TOOLS_BASE, "calls": [{"bad": 1}] * 100_000}
    with pytest.raises(DecodeError) as info:
        from_dict(obj)
    message = str(info.value)
    assert "field 'calls[0].tool_call_id': required field missing" in message
    assert "calls[1]" not in message


def test_a_bad_call_after_good_ones_is_named() -> None:
    good = {"tool_call_id": "c", "tool_name": "t", "payload": {}}
    obj = {**EXTERNAL_TOOLS_BASE, "calls": [good, good, good, 5, {"bad": 1}]}
    with pytest.raises(DecodeError, match=r"field 'calls\[3\]': expected object, got integer 5$"):
        from_dict(obj)


EXTERNAL_TOOLS_BASE: dict[str, Any] = {
    "type": "await_external_tools",
    "run_id": "r",
    "agent": "a",
    "node": "n",
    "seq": 1,
    "ts": 1.0,
    "request_id": "q",
}


class RaisingMapping(Mapping[str, Any]):
    """A mapping whose every read fails, as a broken user type might."""

    def __init__(self, keys: list[str]) -> None:
        self.keys_ = keys

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_)

    def __len__(self) -> int:
        return len(self.keys_)


@pytest.mark.parametrize(
    "data",
    [3 * 10**9, None, 1.5, [b"{}"], object(), "9" * 10_000, "[" * 100_000, b"\xff\xfe"],
    ids=["huge-int", "none", "float", "list", "object", "long-number", "deep", "bad-utf8"],
)
def test_loads_raises_only_decode_error(data: Any) -> None:
    # loads(3 * 10**9) used to allocate 3 GB of zeros (bytes(n)) and raise MemoryError.
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            loads(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000  # "[" * 100_000 is the largest input here


@pytest.mark.parametrize("keys", [[], ["type"], ["type", "run_id"]])
def test_a_mapping_that_raises_is_a_decode_error(keys: list[str]) -> None:
    with pytest.raises(DecodeError, match="cannot read the input: RuntimeError: boom"):
        from_dict(RaisingMapping(keys))


def test_a_deep_mapping_built_in_python_is_a_decode_error() -> None:
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    obj = {**EXTERNAL_TOOLS_BASE, "type": "custom", "name": "n", "data": deep}
    with pytest.raises(DecodeError):
        from_dict(obj)


# --- one event, one line -------------------------------------------------------------


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85"], ids=["U+2028", "U+2029", "U+0085"])
def test_line_separators_are_escaped(char: str) -> None:
    # str.splitlines (and JavaScript before ES2019) break lines at these; JSON does not.
    ev = rs.Custom(
        run=rs.RunInfo(run_id="r", agent="a"),
        node="n",
        seq=0,
        ts=1.0,
        name="x",
        data={"text": f"one{char}two", f"k{char}": [char]},
    )
    data = dumps(ev)
    assert len(data.decode().splitlines()) == 1
    assert char.encode() not in data
    assert f"\\u{ord(char):04x}".encode() in data
    assert loads(data) == ev
    assert loads(data.decode().splitlines()[0]) == ev


def test_other_non_ascii_text_stays_raw() -> None:
    ev = rs.Custom(
        run=rs.RunInfo(run_id="r", agent="a"), node="n", seq=0, ts=1.0, name="x", data="é—😀"
    )
    assert "é—😀".encode() in dumps(ev)
