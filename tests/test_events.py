"""The sealed event hierarchy: shape, identity, immutability, matching."""

from __future__ import annotations

import time
import typing
from typing import Any

import attrs
import pytest

import runstream as rs
from runstream import events as ev_mod

# The design's table: class, wire tag, own fields (in order).
DESIGN_TABLE: list[tuple[type[Any], str, tuple[str, ...]]] = [
    (rs.AssistantReply, "assistant_reply", ("text", "message_id", "done")),
    (rs.PlannerThought, "planner_thought", ("text", "message_id", "done")),
    (rs.ToolStart, "tool_start", ("tool_call_id", "tool_name", "payload")),
    (rs.ToolUpdate, "tool_update", ("tool_call_id", "tool_name", "progress", "message", "data")),
    (rs.ToolEnd, "tool_end", ("tool_call_id", "tool_name", "result", "error", "duration")),
    (rs.Usage, "usage", ("model", "input_tokens", "output_tokens")),
    (rs.Workflow, "workflow", ("phase", "error")),
    (
        rs.AgentRunStarted,
        "agent_run_started",
        ("tool_call_id", "tool_name", "child_run_id", "child_agent"),
    ),
    (rs.AwaitClarification, "await_clarification", ("request_id", "question", "tool_call")),
    (rs.AwaitExternalTools, "await_external_tools", ("request_id", "calls")),
    (rs.StateUpdate, "state_update", ("updates",)),
    (rs.Custom, "custom", ("name", "data")),
]
CLASSES = [cls for cls, _, _ in DESIGN_TABLE]
IDENTITY = ("run_id", "parent_run_id", "thread_id", "agent", "node", "seq", "ts")

# Values for every field each class requires (and a few optional ones).
OWN: dict[type[Any], dict[str, Any]] = {
    rs.AssistantReply: {"text": "Hel", "message_id": "m1", "done": False},
    rs.PlannerThought: {"text": "hmm", "message_id": "m2", "done": True},
    rs.ToolStart: {"tool_call_id": "c1", "tool_name": "search", "payload": {"q": "sky"}},
    rs.ToolUpdate: {
        "tool_call_id": "c1",
        "tool_name": "search",
        "progress": 0.5,
        "message": "half",
        "data": [1, 2],
    },
    rs.ToolEnd: {
        "tool_call_id": "c1",
        "tool_name": "search",
        "result": ["blue"],
        "error": None,
        "duration": 0.25,
    },
    rs.Usage: {"model": "scripted", "input_tokens": 10, "output_tokens": 3},
    rs.Workflow: {"phase": rs.Phase.STARTED},
    rs.AgentRunStarted: {
        "tool_call_id": "c2",
        "tool_name": "helper",
        "child_run_id": "r-child",
        "child_agent": "helper",
    },
    rs.AwaitClarification: {"request_id": "q1", "question": "Which sky?"},
    rs.AwaitExternalTools: {
        "request_id": "q2",
        "calls": (rs.ToolCall("c3", "lookup", {"k": 1}),),
    },
    rs.StateUpdate: {"updates": {"answer": "blue"}},
    rs.Custom: {"name": "ping", "data": {"n": 1}},
}

RUN = rs.RunInfo(run_id="r1", agent="researcher", parent_run_id="r0", thread_id="t1")


def make(cls: type[Any], run: rs.RunInfo = RUN, **extra: Any) -> Any:
    kwargs: dict[str, Any] = {"run": run, "node": "search", "seq": 3, "ts": 1000.5}
    kwargs.update(OWN[cls])
    kwargs.update(extra)
    return cls(**kwargs)


def ids(cls: type[Any]) -> str:
    return cls.__name__


# --- the set of classes -----------------------------------------------------------


def test_event_types_are_the_twelve_classes_in_design_order() -> None:
    assert rs.EVENT_TYPES == tuple(CLASSES)
    assert ev_mod.EVENT_TYPES is rs.EVENT_TYPES
    assert len(set(rs.EVENT_TYPES)) == 12


@pytest.mark.parametrize(("cls", "tag", "own"), DESIGN_TABLE, ids=[c.__name__ for c in CLASSES])
def test_type_tag_and_own_fields_match_design(
    cls: type[Any], tag: str, own: tuple[str, ...]
) -> None:
    assert cls.type == tag
    assert make(cls).type == tag
    names = [f.name for f in attrs.fields(cls)]
    for name in own:
        assert name in names


def test_type_tags_are_unique() -> None:
    assert len({cls.type for cls in rs.EVENT_TYPES}) == 12


def test_event_union_covers_exactly_the_twelve_classes() -> None:
    assert set(typing.get_args(rs.Event)) == set(CLASSES)
    assert len(typing.get_args(rs.Event)) == 12
    assert ev_mod.Event is rs.Event


def test_classes_are_reexported_at_top_level() -> None:
    for cls in CLASSES:
        assert getattr(rs, cls.__name__) is cls
        assert getattr(ev_mod, cls.__name__) is cls
        assert cls.__name__ in rs.__all__


# --- identity ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_every_event_has_the_identity_attributes(cls: type[Any]) -> None:
    ev = make(cls)
    for name in IDENTITY:
        assert hasattr(ev, name)
    assert ev.run_id == "r1"
    assert ev.parent_run_id == "r0"
    assert ev.thread_id == "t1"
    assert ev.agent == "researcher"
    assert ev.node == "search"
    assert ev.seq == 3
    assert ev.ts == 1000.5


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_defaults_root_run_and_run_level_event(cls: type[Any]) -> None:
    ev = cls(run_id="r", agent="a", seq=0, **OWN[cls])
    assert ev.parent_run_id is None
    assert ev.thread_id is None
    assert ev.node is None


def test_events_of_one_run_share_the_identity_object() -> None:
    a = make(rs.AssistantReply)
    b = make(rs.ToolEnd, seq=4)
    assert a.run is b.run is RUN


def test_flat_construction_equals_runinfo_form() -> None:
    flat = rs.Custom(run_id="r", agent="a", seq=0, name="x", ts=5.0)
    nested = rs.Custom(run=rs.RunInfo(run_id="r", agent="a"), seq=0, name="x", ts=5.0)
    assert flat == nested
    assert flat.run == rs.RunInfo("r", "a")
    assert flat.run_id == "r"
    assert flat.agent == "a"


def test_flat_construction_with_all_identity_parts() -> None:
    ev = rs.ToolEnd(
        run_id="r2",
        agent="child",
        parent_run_id="r1",
        thread_id="t",
        node="n",
        seq=9,
        ts=1.0,
        tool_call_id="c",
        tool_name="t",
    )
    assert ev.run == rs.RunInfo(run_id="r2", agent="child", parent_run_id="r1", thread_id="t")
    assert ev == rs.ToolEnd(run=ev.run, node="n", seq=9, ts=1.0, tool_call_id="c", tool_name="t")


def test_ts_defaults_to_now() -> None:
    before = time.time()
    ev = rs.Custom(run_id="r", agent="a", seq=0, name="x")
    after = time.time()
    assert before <= ev.ts <= after


@pytest.mark.parametrize(
    "kwargs",
    [
        {"agent": "a", "seq": 0, "name": "x"},
        {"run_id": "r", "seq": 0, "name": "x"},
        {"seq": 0, "name": "x"},
    ],
    ids=["no-run_id", "no-agent", "neither"],
)
def test_missing_identity_is_a_helpful_type_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(
        TypeError, match=r"Custom\(\) needs run=RunInfo\(\.\.\.\), or run_id= and agent="
    ):
        rs.Custom(**kwargs)


def test_missing_own_field_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="name"):
        rs.Custom(run_id="r", agent="a", seq=0)


def test_missing_seq_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="seq"):
        rs.Custom(run_id="r", agent="a", name="x")


# --- frozen, slotted, keyword-only -----------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_events_are_frozen(cls: type[Any]) -> None:
    ev = make(cls)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ev.seq = 4
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ev.node = "other"
    own = next(iter(OWN[cls]))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(ev, own, OWN[cls][own])
    with pytest.raises(AttributeError):
        ev.run_id = "other"
    with pytest.raises(AttributeError):
        del ev.seq
    assert ev.seq == 3
    assert ev.run_id == "r1"


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_events_are_slotted(cls: type[Any]) -> None:
    ev = make(cls)
    assert not hasattr(ev, "__dict__")
    assert "__slots__" in cls.__dict__
    with pytest.raises(AttributeError):
        ev.extra = 1


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_events_are_keyword_only(cls: type[Any]) -> None:
    assert all(f.kw_only for f in attrs.fields(cls))
    with pytest.raises(TypeError):
        cls(RUN, "node", 0, 1.0, *OWN[cls].values())
    with pytest.raises(TypeError):
        cls(RUN, seq=0, **OWN[cls])


def test_value_classes_are_frozen() -> None:
    err = rs.ErrorInfo("ValueError", "boom")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        err.message = "x"
    call = rs.ToolCall("c", "t", {})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        call.tool_name = "x"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        RUN.run_id = "x"


# --- sealed -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_hierarchy_is_closed(cls: type[Any]) -> None:
    with pytest.raises(TypeError, match="hierarchy is closed") as info:

        class Mine(cls):
            pass

    assert cls.__name__ in str(info.value)


def test_hierarchy_is_closed_for_attrs_subclass_too() -> None:
    with pytest.raises(TypeError, match="hierarchy is closed"):

        @attrs.frozen(kw_only=True)
        class MyEnd(rs.ToolEnd):
            extra: int = 0


def test_hierarchy_is_closed_for_dynamic_subclass() -> None:
    with pytest.raises(TypeError, match="hierarchy is closed"):
        type("Dyn", (rs.Custom,), {})


# --- pattern matching -------------------------------------------------------------


def describe(ev: rs.Event) -> str:
    match ev:
        case rs.ToolEnd(error=None, tool_name=name, duration=d):
            return f"ok {name} {d}"
        case rs.ToolEnd(tool_name=name, error=rs.ErrorInfo(type=etype, message=msg)):
            return f"failed {name}: {etype}: {msg}"
        case rs.Workflow(phase=rs.Phase.COMPLETED | rs.Phase.FAILED | rs.Phase.CANCELED as p):
            return f"end {p.value}"
        case rs.Workflow(phase=p):
            return f"phase {p.value}"
        case rs.AssistantReply(text=text, done=True):
            return f"reply-last {text!r}"
        case rs.AssistantReply(text=text):
            return f"reply {text!r}"
        case rs.Custom(run_id="child-run", name=name):
            return f"child custom {name}"
        case rs.Custom(parent_run_id=None, agent=agent, name=name, data={"n": n}):
            return f"root custom {agent} {name} {n}"
        case _:
            return "other"


def test_match_on_own_fields() -> None:
    assert describe(make(rs.ToolEnd)) == "ok search 0.25"
    failed = make(rs.ToolEnd, error=rs.ErrorInfo("KeyError", "k"))
    assert describe(failed) == "failed search: KeyError: k"
    assert describe(make(rs.Workflow, phase=rs.Phase.FAILED)) == "end failed"
    assert describe(make(rs.Workflow, phase=rs.Phase.PLANNING)) == "phase planning"
    assert describe(make(rs.AssistantReply)) == "reply 'Hel'"
    assert describe(make(rs.AssistantReply, done=True, text="")) == "reply-last ''"
    assert describe(make(rs.Usage)) == "other"


def test_match_on_identity_properties() -> None:
    child = rs.RunInfo(run_id="child-run", agent="helper", parent_run_id="r1")
    root = rs.RunInfo(run_id="root", agent="main")
    assert describe(make(rs.Custom, run=child)) == "child custom ping"
    assert describe(make(rs.Custom, run=root)) == "root custom main ping 1"
    # parent_run_id is "r0" here: neither case matches.
    assert describe(make(rs.Custom)) == "other"


def test_match_on_seq_node_and_thread() -> None:
    ev = make(rs.Usage)
    match ev:
        case rs.Usage(seq=3, node="search", thread_id="t1", model=m, input_tokens=i):
            got = (m, i)
        case _:
            got = None
    assert got == ("scripted", 10)


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_every_class_matches_its_own_pattern_only(cls: type[Any]) -> None:
    ev = make(cls)
    for other in CLASSES:
        match ev:
            case other(run_id="r1"):
                matched = True
            case _:
                matched = False
        assert matched is (other is cls)


# --- Phase, ErrorInfo, ToolCall ----------------------------------------------------


def test_phase_members_and_values() -> None:
    assert [(p.name, p.value) for p in rs.Phase] == [
        ("STARTED", "started"),
        ("PLANNING", "planning"),
        ("EXECUTING_TOOLS", "executing_tools"),
        ("SYNTHESIZING", "synthesizing"),
        ("AWAITING", "awaiting"),
        ("COMPLETED", "completed"),
        ("FAILED", "failed"),
        ("CANCELED", "canceled"),
    ]
    assert rs.Phase("completed") is rs.Phase.COMPLETED
    assert rs.Phase.COMPLETED == "completed"
    assert isinstance(rs.Phase.STARTED, str)
    with pytest.raises(ValueError, match="nope"):
        rs.Phase("nope")


@pytest.mark.parametrize("phase", list(rs.Phase), ids=lambda p: p.value)
def test_phase_is_terminal(phase: rs.Phase) -> None:
    terminal = {rs.Phase.COMPLETED, rs.Phase.FAILED, rs.Phase.CANCELED}
    assert phase.is_terminal is (phase in terminal)


def test_error_info() -> None:
    err = rs.ErrorInfo("ValueError", "boom")
    assert (err.type, err.message, err.retryable) == ("ValueError", "boom", False)
    assert rs.ErrorInfo(type="T", message="m", retryable=True).retryable is True
    assert err == rs.ErrorInfo(type="ValueError", message="boom", retryable=False)


def test_error_info_from_exception() -> None:
    class QuotaExceeded(RuntimeError):
        pass

    assert rs.ErrorInfo.from_exception(ValueError("bad value")) == rs.ErrorInfo(
        "ValueError", "bad value"
    )
    got = rs.ErrorInfo.from_exception(QuotaExceeded("try later"), retryable=True)
    assert got == rs.ErrorInfo("QuotaExceeded", "try later", retryable=True)
    assert rs.ErrorInfo.from_exception(KeyError("k")).message == "'k'"


def test_tool_call() -> None:
    call = rs.ToolCall("c1", "search", {"q": "x"})
    assert (call.tool_call_id, call.tool_name, call.payload) == ("c1", "search", {"q": "x"})
    assert call == rs.ToolCall(tool_call_id="c1", tool_name="search", payload={"q": "x"})
    assert rs.ToolCall("c", "t").payload == {}


def test_equality_is_by_value() -> None:
    assert make(rs.ToolEnd) == make(rs.ToolEnd, run=rs.RunInfo("r1", "researcher", "r0", "t1"))
    assert make(rs.ToolEnd) != make(rs.ToolEnd, seq=4)
    assert make(rs.AssistantReply) != make(rs.PlannerThought, text="Hel", message_id="m1")


# --- the runtime's fast constructor -----------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids)
def test_build_equals_keyword_constructor(cls: type[Any]) -> None:
    expected = make(cls)
    args = [getattr(expected, f.name) for f in attrs.fields(cls)]
    built = cls._build(*args)
    assert type(built) is cls
    assert built == expected
    assert built.run is RUN
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.seq = 0
