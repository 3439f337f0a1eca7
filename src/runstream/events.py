"""The sealed event hierarchy every run emits.

Events are frozen, slotted, keyword-only attrs classes. The hierarchy is closed:
subclassing any event class outside this module raises `TypeError`, so a
`match` over [`Event`][runstream.events.Event] with `typing.assert_never` in
the default branch is exhaustive.

The identity that is constant for a run (run id, parent run id, thread id and
agent name) lives in one shared [`RunInfo`][runstream.events.RunInfo] object per
run; every event points at it and exposes its parts as read-only properties.

Example:
    ```python
    match event:
        case rs.AssistantReply(text=text):
            print(text, end="")
        case rs.ToolEnd(tool_name=name, error=None):
            print(f"{name} ok")
    ```
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeAlias

import attrs

__all__ = [
    "EVENT_TYPES",
    "JSON",
    "AgentRunStarted",
    "AssistantReply",
    "AwaitClarification",
    "AwaitExternalTools",
    "Custom",
    "ErrorInfo",
    "Event",
    "Phase",
    "PlannerThought",
    "RunInfo",
    "StateUpdate",
    "ToolCall",
    "ToolEnd",
    "ToolStart",
    "ToolUpdate",
    "Usage",
    "Workflow",
]

JSON: TypeAlias = bool | int | float | str | Sequence["JSON"] | Mapping[str, "JSON"] | None
"""A JSON-compatible value: what payloads, results and data fields hold."""


class Phase(enum.StrEnum):
    """The phase a run is in, carried by [`Workflow`][runstream.events.Workflow] events.

    `COMPLETED`, `FAILED` and `CANCELED` are terminal: a run emits exactly one
    of them, as its last event.
    """

    STARTED = "started"
    PLANNING = "planning"
    EXECUTING_TOOLS = "executing_tools"
    SYNTHESIZING = "synthesizing"
    AWAITING = "awaiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """True for `COMPLETED`, `FAILED` and `CANCELED`."""
        return self in _TERMINAL


_TERMINAL = frozenset({Phase.COMPLETED, Phase.FAILED, Phase.CANCELED})


@attrs.frozen(slots=True)
class ErrorInfo:
    """What went wrong, in a form that survives the wire.

    Attributes:
        type: the exception's class name, e.g. `"ValueError"`.
        message: the exception's message.
        retryable: whether trying again may succeed.
    """

    type: str
    message: str
    retryable: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException, *, retryable: bool = False) -> ErrorInfo:
        """Describe `exc`: its class name and its message.

        `retryable` is also true when the exception says so itself (a
        `retryable` attribute that is true, as `ModelError` has).
        """
        retryable = retryable or getattr(exc, "retryable", False) is True
        return cls(type=type(exc).__name__, message=str(exc), retryable=retryable)


@attrs.frozen(slots=True)
class ToolCall:
    """A request to call a tool: made by a model, or awaited from outside."""

    tool_call_id: str
    tool_name: str
    payload: JSON = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class RunInfo:
    """The identity shared by every event of one run.

    Attributes:
        run_id: the run that emitted the event (a child run has its own id).
        agent: the name of the graph that runs.
        parent_run_id: the run that started this one as a child; None at the root.
        thread_id: the conversation the run belongs to, if given.
    """

    run_id: str
    agent: str
    parent_run_id: str | None = None
    thread_id: str | None = None


_IDENTITY = ("run_id", "agent", "parent_run_id", "thread_id")


def _now() -> float:
    return time.time()


@attrs.define(slots=True, kw_only=True, eq=False)
class _EventBase:
    """Fields every event has; the run-constant ones come through `run`.

    The base itself is not frozen (it is never instantiated): every concrete
    class is, so user code cannot assign to an event. The runtime fills events
    through mutable twins of the same layout (see `_positional_builder`).
    """

    run: RunInfo
    node: str | None = None
    seq: int
    ts: float = attrs.field(factory=_now)

    type: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if cls.__module__ != __name__:
            raise TypeError(
                f"cannot subclass {cls.__mro__[1].__name__}: the runstream event "
                "hierarchy is closed; use Custom(name=..., data=...) for your own events"
            )
        super().__init_subclass__(**kwargs)

    @property
    def run_id(self) -> str:
        """The run that emitted this event."""
        return self.run.run_id

    @property
    def parent_run_id(self) -> str | None:
        """The run that started this run as a child; None at the root."""
        return self.run.parent_run_id

    @property
    def thread_id(self) -> str | None:
        """The conversation the run belongs to, if given."""
        return self.run.thread_id

    @property
    def agent(self) -> str:
        """The name of the graph that emitted this event."""
        return self.run.agent


@attrs.frozen(slots=True, kw_only=True)
class AssistantReply(_EventBase):
    """A delta of the assistant's reply text.

    Attributes:
        text: the delta.
        message_id: the message the delta belongs to.
        done: True on the last chunk of a message (its text may be empty).
        internal: True for text of a node added with `internal=True`.
    """

    type: ClassVar[str] = "assistant_reply"

    text: str
    message_id: str
    done: bool = False
    internal: bool = False


@attrs.frozen(slots=True, kw_only=True)
class PlannerThought(_EventBase):
    """A delta of the planner's reasoning; fields as in `AssistantReply`."""

    type: ClassVar[str] = "planner_thought"

    text: str
    message_id: str
    done: bool = False
    internal: bool = False


@attrs.frozen(slots=True, kw_only=True)
class ToolStart(_EventBase):
    """A tool call began.

    Attributes:
        tool_call_id: unique in the run tree.
        tool_name: the tool's name.
        payload: the call's arguments.
    """

    type: ClassVar[str] = "tool_start"

    tool_call_id: str
    tool_name: str
    payload: JSON = attrs.field(factory=dict)


@attrs.frozen(slots=True, kw_only=True)
class ToolUpdate(_EventBase):
    """Progress of a running tool call.

    Attributes:
        progress: fraction done, 0..1, if known.
        message: a human-readable status line.
        data: anything else, as JSON.
    """

    type: ClassVar[str] = "tool_update"

    tool_call_id: str
    tool_name: str
    progress: float | None = None
    message: str | None = None
    data: JSON = None


@attrs.frozen(slots=True, kw_only=True)
class ToolEnd(_EventBase):
    """A tool call finished.

    Attributes:
        result: what the tool returned (None when it failed).
        error: why it failed, or None.
        duration: seconds from `ToolStart` to here.
    """

    type: ClassVar[str] = "tool_end"

    tool_call_id: str
    tool_name: str
    result: JSON = None
    error: ErrorInfo | None = None
    duration: float = 0.0


@attrs.frozen(slots=True, kw_only=True)
class Usage(_EventBase):
    """Tokens a model call consumed."""

    type: ClassVar[str] = "usage"

    model: str
    input_tokens: int
    output_tokens: int


@attrs.frozen(slots=True, kw_only=True)
class Workflow(_EventBase):
    """The run entered a phase; terminal phases end the run.

    Attributes:
        phase: the phase entered.
        error: why the run failed or was canceled, if it did.
    """

    type: ClassVar[str] = "workflow"

    phase: Phase
    error: ErrorInfo | None = None


@attrs.frozen(slots=True, kw_only=True)
class AgentRunStarted(_EventBase):
    """A tool call started a child run; the child's events follow."""

    type: ClassVar[str] = "agent_run_started"

    tool_call_id: str
    tool_name: str
    child_run_id: str
    child_agent: str


@attrs.frozen(slots=True, kw_only=True)
class AwaitClarification(_EventBase):
    """The run needs an answer from the user to go on.

    Attributes:
        request_id: what the answer names.
        question: what the user is asked.
        tool_call: the tool call the question is about (an approval), if any.
    """

    type: ClassVar[str] = "await_clarification"

    request_id: str
    question: str
    tool_call: ToolCall | None = None


@attrs.frozen(slots=True, kw_only=True)
class AwaitExternalTools(_EventBase):
    """The run needs the results of tool calls executed outside it."""

    type: ClassVar[str] = "await_external_tools"

    request_id: str
    calls: tuple[ToolCall, ...] = ()


@attrs.frozen(slots=True, kw_only=True)
class StateUpdate(_EventBase):
    """A node returned; `updates` is its state delta."""

    type: ClassVar[str] = "state_update"

    updates: Mapping[str, JSON] = attrs.field(factory=dict)


@attrs.frozen(slots=True, kw_only=True)
class Custom(_EventBase):
    """An event of your own: a name and JSON data."""

    type: ClassVar[str] = "custom"

    name: str
    data: JSON = None


Event: TypeAlias = (
    AssistantReply
    | PlannerThought
    | ToolStart
    | ToolUpdate
    | ToolEnd
    | Usage
    | Workflow
    | AgentRunStarted
    | AwaitClarification
    | AwaitExternalTools
    | StateUpdate
    | Custom
)
"""Any runstream event: the union of the twelve classes."""

EVENT_TYPES: tuple[type[Event], ...] = (
    AssistantReply,
    PlannerThought,
    ToolStart,
    ToolUpdate,
    ToolEnd,
    Usage,
    Workflow,
    AgentRunStarted,
    AwaitClarification,
    AwaitExternalTools,
    StateUpdate,
    Custom,
)
"""The event classes, in the order of the design."""


def _accept_flat_identity(cls: type[Any]) -> None:
    """Let `cls(run_id=..., agent=..., ...)` build the shared `RunInfo` itself."""
    attrs_init = cls.__init__

    def __init__(self: Any, **kwargs: Any) -> None:
        if "run" not in kwargs:
            identity = {k: kwargs.pop(k) for k in _IDENTITY if k in kwargs}
            if "run_id" not in identity or "agent" not in identity:
                raise TypeError(f"{cls.__name__}() needs run=RunInfo(...), or run_id= and agent=")
            kwargs["run"] = RunInfo(**identity)
        attrs_init(self, **kwargs)

    __init__.__doc__ = attrs_init.__doc__
    cls.__init__ = __init__


def _positional_builder(cls: type[Any]) -> None:
    """Give `cls` a `_build(run, node, seq, ts, *own fields)` for the runtime's hot path.

    A frozen attrs instance can only be filled through its slots' descriptors,
    one call per field. `_build` fills a twin class instead: the same slots on
    the same (unfrozen) base, so plain attribute stores work, then turns the
    instance into `cls`, which Python allows between classes of one layout.
    That is half the cost of the descriptor calls, with no validation, so only
    the runtime (which passes well-formed values) uses it.
    """
    own = tuple(a.name for a in attrs.fields(cls) if a.name in cls.__slots__)
    twin = type(f"_{cls.__name__}Fill", (_EventBase,), {"__slots__": own, "__module__": __name__})
    names = [a.name for a in attrs.fields(cls)]
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls, "twin": twin}
    body = ["    obj = new(twin)"]
    body += [f"    obj.{name} = {name}" for name in names]
    body.append("    obj.__class__ = cls")
    source = f"def _build({', '.join(names)}):\n" + "\n".join(body) + "\n    return obj\n"
    exec(source, namespace)
    cls._build = staticmethod(namespace["_build"])


for _cls in EVENT_TYPES:
    _accept_flat_identity(_cls)
    _positional_builder(_cls)
