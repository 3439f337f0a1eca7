"""`profile` and `Profile`: named views of a run's stream for different audiences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
from reactivex import Observable, abc

from ..events import (
    EVENT_TYPES,
    AgentRunStarted,
    AssistantReply,
    AwaitClarification,
    AwaitExternalTools,
    Event,
    Phase,
    PlannerThought,
    ToolEnd,
    ToolStart,
    ToolUpdate,
    Usage,
    Workflow,
)
from ._lean import LeanObservable

__all__ = ["Profile", "profile"]

_TERMINAL = frozenset(p for p in Phase if p.is_terminal)


@attrs.frozen(slots=True, kw_only=True)
class Profile:
    """Which events a consumer sees, and how much of each.

    Every field narrows the stream; the defaults keep everything unchanged.

    Attributes:
        name: the profile's name (the `?profile=` value for the built-in ones).
        include: the event classes kept; None keeps every class.
        phases: the `Workflow` phases kept; None keeps every phase.
        child_workflow: keep `Workflow` events of child runs.
        hide_internal: drop reply and thought chunks with `internal=True`
            (the text of nodes added with `internal=True`).
        hide_thoughts: drop `PlannerThought`.
        strip_tool_data: empty the tool data: `ToolStart.payload` becomes `{}`,
            `ToolUpdate.data` and `ToolEnd.result` become None. Names, ids,
            progress, `ToolEnd.error` (the status) and `duration` stay.
        root_only: drop every event of child runs.

    The built-in profiles (class attributes, also found by name with
    [`named`][runstream.ops.Profile.named]):

    - `USER_CHAT` (`"user_chat"`), for a chat window: `AssistantReply`,
      `ToolStart` and `ToolEnd` stripped of payload and result,
      `AgentRunStarted`, `AwaitClarification`, `AwaitExternalTools` (with their
      calls' arguments, which the client needs to run them) and the root run's
      terminal `Workflow` (so it is the last event and the only `Workflow`).
      Replies of child runs are shown: each child run is announced by the
      `AgentRunStarted` of the tool call that started it, and a child's replies
      carry its `run_id`. Hidden: `PlannerThought`, reply chunks with
      `internal=True`, `ToolUpdate`, `Usage`, `StateUpdate`, `Custom` and
      non-terminal or child-run `Workflow` events.
    - `AGENT_DEBUG` (`"agent_debug"`): every event, unchanged.
    - `METRICS` (`"metrics"`): `Usage` and `Workflow` (every phase, every run).
    """

    name: str = "custom"
    include: frozenset[type[Event]] | None = None
    phases: frozenset[Phase] | None = None
    child_workflow: bool = True
    hide_internal: bool = False
    hide_thoughts: bool = False
    strip_tool_data: bool = False
    root_only: bool = False

    USER_CHAT: ClassVar[Profile]
    AGENT_DEBUG: ClassVar[Profile]
    METRICS: ClassVar[Profile]

    @classmethod
    def named(cls, name: str) -> Profile:
        """The built-in profile called `name` (`"user_chat"`, `"agent_debug"`, `"metrics"`).

        Raises:
            ValueError: no built-in profile has that name; the message lists them.
        """
        found = _BY_NAME.get(name)
        if found is None:
            known = ", ".join(sorted(_BY_NAME))
            raise ValueError(f"unknown profile {name!r}; known profiles: {known}")
        return found

    @property
    def keeps_everything(self) -> bool:
        """True when this profile passes every event unchanged."""
        return (
            self.include is None
            and self.phases is None
            and self.child_workflow
            and not (
                self.hide_internal or self.hide_thoughts or self.strip_tool_data or self.root_only
            )
        )


Profile.USER_CHAT = Profile(
    name="user_chat",
    include=frozenset(
        {
            AssistantReply,
            ToolStart,
            ToolEnd,
            AgentRunStarted,
            AwaitClarification,
            AwaitExternalTools,
            Workflow,
        }
    ),
    phases=_TERMINAL,
    child_workflow=False,
    hide_internal=True,
    hide_thoughts=True,
    strip_tool_data=True,
)
Profile.AGENT_DEBUG = Profile(name="agent_debug")
Profile.METRICS = Profile(name="metrics", include=frozenset({Usage, Workflow}))

_BY_NAME = {p.name: p for p in (Profile.USER_CHAT, Profile.AGENT_DEBUG, Profile.METRICS)}

# What to do with one class: pass it as it is, drop it, or call a function
# that returns the event to emit (possibly changed) or None to drop it.
_Rule = Callable[[Any], Any] | bool


def _rules(p: Profile) -> dict[type, _Rule]:
    rules: dict[type, _Rule] = {}
    for cls in EVENT_TYPES:
        keep = p.include is None or cls in p.include
        if cls is PlannerThought and p.hide_thoughts:
            keep = False
        rule: _Rule = keep
        if keep and p.hide_internal and cls in (AssistantReply, PlannerThought):
            rule = _drop_internal
        elif keep and p.strip_tool_data and cls in _STRIP:
            rule = _STRIP[cls]
        elif keep and cls is Workflow and (p.phases is not None or not p.child_workflow):
            rule = _workflow_rule(p.phases, p.child_workflow)
        rules[cls] = rule
    return rules


def _drop_internal(event: AssistantReply | PlannerThought) -> Any:
    return None if event.internal else event


def _strip_start(event: ToolStart) -> ToolStart:
    return event if event.payload == {} else attrs.evolve(event, payload={})


def _strip_update(event: ToolUpdate) -> ToolUpdate:
    return event if event.data is None else attrs.evolve(event, data=None)


def _strip_end(event: ToolEnd) -> ToolEnd:
    return event if event.result is None else attrs.evolve(event, result=None)


_STRIP: dict[type, Callable[[Any], Any]] = {
    ToolStart: _strip_start,
    ToolUpdate: _strip_update,
    ToolEnd: _strip_end,
}


def _workflow_rule(phases: frozenset[Phase] | None, children: bool) -> Callable[[Any], Any]:
    def rule(event: Workflow) -> Workflow | None:
        if phases is not None and event.phase not in phases:
            return None
        if not children and event.run.parent_run_id is not None:
            return None
        return event

    return rule


def profile(p: Profile | str) -> Callable[[Observable[Event]], Observable[Event]]:
    """Show the stream as profile `p` sees it (see [`Profile`][runstream.ops.Profile]).

    `p` is a `Profile` or the name of a built-in one, as the server's
    `?profile=` passes it. `AGENT_DEBUG` returns the source itself.

    ```
    profile(Profile.USER_CHAT)
    source:  -W-t-r-S-U-E-u-i-r-C-|
    result:  -----r-s---e-----r-C-|
    ```
    W = Workflow(started), t = PlannerThought, r = reply, S/U/E = tool
    start/update/end, u = Usage, i = reply of an internal node,
    C = Workflow(completed); s/e = S/E without payload and result.

    Example:
        ```python
        app.run("hi").pipe(ops.profile("user_chat"))
        ```

    Raises:
        ValueError: `p` is a string that names no built-in profile.
    """
    chosen = Profile.named(p) if isinstance(p, str) else p
    if chosen.keeps_everything:
        return _identity
    show = event_filter(chosen)

    def operator(source: Observable[Event]) -> Observable[Event]:
        def subscribe(
            observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            emit = observer.on_next

            def on_next(event: Any) -> None:
                shown = show(event)
                if shown is not None:
                    emit(shown)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return LeanObservable(subscribe)

    return operator


def event_filter(p: Profile | str) -> Callable[[Any], Any]:
    """Profile `p` as a function of one event: the event as shown, or None.

    For consumers that are not observables, such as the server's per-connection
    `?profile=`.
    """
    chosen = Profile.named(p) if isinstance(p, str) else p
    rules = _rules(chosen)
    roots_only = chosen.root_only
    other = chosen.include is None  # what to do with an item of no event class
    get = rules.get

    def show(event: Any) -> Any:
        rule = get(type(event), other)
        if rule is False or (roots_only and event.run.parent_run_id is not None):
            return None
        if rule is True:
            return event
        return rule(event)

    return show


def _identity(source: Observable[Event]) -> Observable[Event]:
    return source
