"""Executing a run: bulk-synchronous steps, event emission, child runs."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import anyio

from .._flow import Flow
from .._ids import new_id
from ..codec import loose_json
from ..events import (
    AgentRunStarted,
    AssistantReply,
    Custom,
    ErrorInfo,
    Event,
    Phase,
    PlannerThought,
    RunInfo,
    StateUpdate,
    ToolEnd,
    ToolStart,
    Workflow,
)
from ._checkpoint import (
    Await,
    Checkpoint,
    Checkpointer,
    ThreadBusy,
    decode_thread,
    encode_checkpoint,
    encode_thread,
)
from ._errors import RoutingError, RunFailed, StepLimitError
from ._spec import END, Command, Graph, GraphSpec, NodeSpec, Router

__all__ = [
    "RESUMED",
    "ContextFactory",
    "Durable",
    "Outcome",
    "Run",
    "Suspend",
    "Tree",
    "check_progress",
    "first_error",
]

RESUMED = "runstream.resumed"
"""The `Custom` event a resumed run emits first (see docs/durability.md)."""

_time = time.time
_new = object.__new__
_CLEANUPS: set[asyncio.Task[None]] = set()  # checkpoint cleanups of cancelled runs
YIELD_EVERY = 512  # emits between cooperative yields, so siblings stream live


ContextFactory = Callable[["Run", NodeSpec], object]
"""Makes the `ctx` argument of a node (the graph package hands in `RunContext`)."""


class Tree:
    """What a root run shares with its children: the seq counter and the consumer."""

    __slots__ = (
        "context",
        "disposed",
        "flow",
        "inbox",
        "on_next",
        "open_tools",
        "root_id",
        "seq",
        "tool_ids",
    )

    def __init__(
        self,
        on_next: Callable[[Event], None] | None,
        flow: Flow | None,
        context: ContextFactory,
        inbox: Any = None,
        root_id: str = "",
    ) -> None:
        self.on_next = on_next
        self.root_id = root_id  # the root run's id
        self.flow = flow
        self.context = context
        self.inbox = inbox  # where answers to the tree's questions arrive
        self.seq = 0
        self.tool_ids: set[str] = set()
        self.open_tools: set[str] = set()  # started, not ended: a checkpoint names them
        self.disposed = False

    def emit(self, cls: type[Any], run: RunInfo, node: str | None, *fields: Any) -> bool:
        """Number, build and deliver one event, synchronously.

        `fields` are the event's own fields, positionally, in declaration order.
        Returns True when the emitter should `await checkpoint()`: the consumer
        is full, or it is time to let sibling tasks run.
        """
        seq = self.seq
        self.seq = seq + 1
        event = cls._build(run, node, seq, _time(), *fields)
        on_next = self.on_next
        if on_next is not None and not self.disposed:
            on_next(event)
        flow = self.flow
        if flow is not None and (flow.paused or flow.nudged):
            return True
        return not seq % YIELD_EVERY

    async def checkpoint(self) -> None:
        """Wait while the consumer is full; otherwise let other tasks run once."""
        flow = self.flow
        if flow is not None and flow.paused:
            await flow.wait()
        else:
            if flow is not None:
                flow.nudged = False
            await asyncio.sleep(0)


class Outcome:
    """How a run ended."""

    __slots__ = ("error", "phase")

    def __init__(self, phase: Phase, error: ErrorInfo | None = None) -> None:
        self.phase = phase
        self.error = error


class Suspend(BaseException):
    """A node asked in a run that suspends: unwind it, keep the run in its checkpoint.

    A `BaseException`, so that a node's `except Exception` does not swallow it.
    """


class Durable:
    """A root run's checkpoints: where they go, and what the run resumes from.

    Args:
        checkpointer: where checkpoints are kept.
        suspend: a node that asks saves the run and unwinds it (`Suspend`)
            instead of waiting in its task.
        resumed: the checkpoint to go on from (None: a new run).
        answers: answers to the resumed checkpoint's questions, by request id.
        tail: the run's events from the resumed step's first seq to the end of
            its log: what that step left open is closed before it runs again.
        reason: why it resumes (`answered`, `worker_lost`), in the marker.
        live: where the run registers while it executes (for `release`).
    """

    def __init__(
        self,
        checkpointer: Checkpointer,
        *,
        suspend: bool = False,
        resumed: Checkpoint | None = None,
        answers: dict[str, Any] | None = None,
        tail: Iterable[Event] = (),
        reason: str = "answered",
        live: dict[str, Run] | None = None,
    ) -> None:
        self.checkpointer = checkpointer
        self.live = live  # the graph's runs executing in this process, by id
        self.suspend = suspend
        self.resumed = resumed
        self.tail = list(tail)
        self.reason = reason
        self.holds_thread = False
        # The step under way: what a checkpoint within it saves.
        self.step = 0
        self.names: list[str] = []
        self.joined: dict[int, set[str]] = {}
        self.done: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        self.awaits: list[Await] = []
        self.asked: dict[str | None, int] = {}
        self.step_seq = 0
        # The resumed step's questions, by (node, index): a node that runs
        # again gets its answer, or waits again under the same request id.
        self.replay: dict[tuple[str | None, int], Await] = {}
        if resumed is not None:
            for ask in resumed.awaits:
                if not ask.answered and answers and ask.request_id in answers:
                    ask.answered, ask.value = True, answers[ask.request_id]
                self.replay[(ask.node, ask.index)] = ask


def _suspended(group: BaseExceptionGroup[BaseException]) -> bool:
    """Whether a node's exception group is a question that suspends (and its cancellations)."""
    asked, rest = group.split(Suspend)
    if asked is None:
        return False
    cancelled = anyio.get_cancelled_exc_class()
    return rest is None or rest.split(cancelled)[1] is None


def _cleaned(task: asyncio.Task[None]) -> None:
    """A cancelled run's cleanup ended: a failure there is not the run's to report."""
    _CLEANUPS.discard(task)
    if not task.cancelled():
        task.exception()


def first_error(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    cancelled = anyio.get_cancelled_exc_class()
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, cancelled)]
        exc = (inner or list(exc.exceptions))[0]
    return exc


class Run:
    """One run of a compiled graph: a root run or a child run in a tree."""

    def __init__(
        self,
        spec: GraphSpec,
        state: dict[str, Any],
        tree: Tree,
        info: RunInfo,
        *,
        max_steps: int,
        timeout: float | None = None,
    ) -> None:
        self.spec = spec
        self.state = state
        self.tree = tree
        self.info = info
        self.max_steps = max_steps
        self.timeout = timeout
        self.cancel_scope: anyio.CancelScope | None = None
        self.cancel_requested = False
        self.cancel_reason: ErrorInfo | None = None
        self.phase: Phase | None = None  # the last phase a node entered
        self.durable: Durable | None = None  # root runs of a graph with a checkpointer
        self.released = False  # stopped to go on elsewhere: no terminal event

    def release(self) -> None:
        """Stop the run without ending it: its checkpoint stays for another process.

        No terminal event; messages and tool calls under way end as when
        cancelled. Only for runs with a checkpointer.
        """
        self.released = True
        self.request_cancel()

    def request_cancel(self, reason: ErrorInfo | None = None) -> None:
        """Stop the run gracefully: it still emits `Workflow(canceled)` (with `reason`)."""
        self.cancel_requested = True
        self.cancel_reason = self.cancel_reason or reason
        if self.cancel_scope is not None:
            self.cancel_scope.cancel()

    def emit_nowait(self, cls: type[Any], node: str | None, *fields: Any) -> None:
        """Emit without waiting for demand: for unwinding after cancellation."""
        self.tree.emit(cls, self.info, node, *fields)

    def spawn(self, graph: Graph, input: object) -> Run:
        """A child run of `graph` in this run's tree (it shares `seq` and the consumer).

        Raises:
            TypeError, KeyError: `input` does not fit `graph`'s state.
        """
        spec = graph.spec
        info = RunInfo(
            run_id=new_id(),
            agent=spec.name,
            parent_run_id=self.info.run_id,
            thread_id=self.info.thread_id,
        )
        return Run(spec, spec.initial_state(input), self.tree, info, max_steps=graph.max_steps)

    async def wait_ready(self) -> None:
        """Wait while the consumer is full (before an emit that must not be cut off)."""
        flow = self.tree.flow
        if flow is not None and flow.paused:
            await flow.wait()

    async def emit(self, cls: type[Any], node: str | None, *fields: Any) -> None:
        """Emit when the consumer has room; wait before and after while it is full.

        Waiting before too keeps a consumer's queue bounded even when several
        tasks emit at once.
        """
        tree = self.tree
        flow = tree.flow
        if flow is not None and flow.paused:
            await flow.wait()
        if tree.emit(cls, self.info, node, *fields):
            await tree.checkpoint()

    async def execute(self) -> Outcome:
        """Run to the end. Emits the first and the terminal `Workflow` event.

        Returns the outcome for completed and canceled runs; raises `RunFailed`
        (cause kept) after the failed event; re-raises cancellation that came
        from outside the run after emitting `Workflow(canceled)`.
        """
        durable = self.durable
        if durable is not None and durable.live is not None:
            durable.live[self.info.run_id] = self
        try:
            return await self._execute(durable)
        finally:
            if durable is not None and durable.live is not None:
                durable.live.pop(self.info.run_id, None)

    async def _execute(self, durable: Durable | None) -> Outcome:
        if durable is not None and durable.resumed is not None:
            self._resume_marker(durable, durable.resumed)
        else:
            self.emit_nowait(Workflow, None, Phase.STARTED, None)
        timed_out = False
        try:
            with anyio.CancelScope() as scope:
                self.cancel_scope = scope
                if self.cancel_requested:
                    scope.cancel()
                if self.timeout is None:
                    await self._steps()
                else:
                    with anyio.move_on_after(self.timeout) as deadline:
                        await self._steps()
                    timed_out = deadline.cancelled_caught
        except Suspend:
            return Outcome(Phase.AWAITING)  # kept in its checkpoint; no terminal event
        except BaseException as raw:
            if self.released and isinstance(first_error(raw), anyio.get_cancelled_exc_class()):
                raise  # stopped to go on elsewhere: neither ended nor forgotten
            if isinstance(raw, anyio.get_cancelled_exc_class()):
                self._ended_later()
                self.emit_nowait(Workflow, None, Phase.CANCELED, None)
                raise
            exc = first_error(raw)
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                self._ended_later()
                self.emit_nowait(Workflow, None, Phase.CANCELED, None)
                raise exc from None
            error = exc.error if isinstance(exc, RunFailed) else ErrorInfo.from_exception(exc)
            if durable is not None:
                with contextlib.suppress(Exception):  # the run's own failure is what is told
                    await self._ended(completed=False)
            await self.emit(Workflow, None, Phase.FAILED, error)
            raise RunFailed(self.info.run_id, self.info.agent, error) from exc
        if timed_out:
            outcome = Outcome(
                Phase.CANCELED,
                ErrorInfo("TimeoutError", f"run timed out after {self.timeout:g}s"),
            )
        elif scope.cancelled_caught:
            if self.released:
                return Outcome(Phase.AWAITING)  # its checkpoint goes on elsewhere
            outcome = Outcome(Phase.CANCELED, self.cancel_reason)
        else:
            outcome = Outcome(Phase.COMPLETED)
        if durable is not None:
            try:
                await self._ended(completed=outcome.phase is Phase.COMPLETED)
            except Exception as exc:  # the thread's state could not be kept: the run failed
                error = ErrorInfo.from_exception(exc)
                await self.emit(Workflow, None, Phase.FAILED, error)
                raise RunFailed(self.info.run_id, self.info.agent, error) from exc
        if outcome.phase is Phase.COMPLETED:
            await self.emit(Workflow, None, outcome.phase, outcome.error)
        else:
            self.emit_nowait(Workflow, None, outcome.phase, outcome.error)
        return outcome

    # --- steps --------------------------------------------------------------------

    async def _steps(self) -> None:
        spec = self.spec
        durable = self.durable
        done: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        save = durable is not None
        if durable is not None and durable.resumed is not None:
            resumed = durable.resumed
            durable.holds_thread = resumed.thread_id is not None
            triggered = set(resumed.next)
            joined = {index: set(names) for index, names in resumed.joined.items()}
            step = resumed.step
            done = dict(resumed.done)
            save = False  # it was saved: the step runs again from it
        else:
            if durable is not None:
                await self._open_thread(durable)
            triggered = set(spec.entry)
            for router in spec.entry_routers:
                triggered.update(await self._route(router))
            joined = {}
            step = 0
        while triggered:
            step += 1
            if step > self.max_steps:
                raise StepLimitError(
                    f"run passed max_steps={self.max_steps} without reaching END "
                    f"(next step would run: {', '.join(sorted(triggered))}); "
                    "raise max_steps or check the graph for a loop"
                )
            names = sorted(triggered)
            if durable is not None:
                durable.step, durable.names, durable.joined = step - 1, names, joined
                durable.done, durable.awaits, durable.asked = done, [], {}
                durable.step_seq = self.tree.seq
                if save:
                    await self.save("running")
                save = True
            results = await self._run_step(names, done)
            done = {}
            if durable is not None:
                durable.replay = {}  # answers belong to the step that asked
            gotos: set[str] = set()
            for name in names:
                update, goto = results[name]
                if update:
                    self._merge(name, update)
                gotos.update(goto)
            triggered = set()
            for name in names:
                triggered.update(spec.edges.get(name, ()))
                for index, (sources, target) in enumerate(spec.joins):
                    if name in sources:
                        seen = joined.setdefault(index, set())
                        seen.add(name)
                        if seen >= sources:
                            triggered.add(target)
                            del joined[index]
                for router in spec.routers.get(name, ()):
                    triggered.update(await self._route(router))
            for target in gotos:
                if target != END:
                    self._check_node(target, "a Command's goto")
                    triggered.add(target)

    async def _run_step(
        self, names: list[str], done: dict[str, tuple[Mapping[str, Any], list[str]]]
    ) -> dict[str, tuple[Mapping[str, Any], list[str]]]:
        if len(names) == 1 and not done and self.durable is None:
            return {names[0]: await self._run_node(self.spec.nodes[names[0]])}
        results = dict(done)  # nodes of a resumed step that finished before it stopped
        suspended = False

        async def one(node: NodeSpec) -> None:
            nonlocal suspended
            try:
                result = await self._run_node(node)
            except Suspend:
                suspended = True  # the others finish; their results are saved
                return
            except BaseExceptionGroup as group:  # asked in a task group of the node's own
                if not _suspended(group):
                    raise
                suspended = True
                return
            results[node.name] = done[node.name] = result

        todo = [self.spec.nodes[name] for name in names if name not in done]
        if len(todo) == 1:
            await one(todo[0])
        else:
            async with anyio.create_task_group() as tg:
                for node in todo:
                    tg.start_soon(one, node)
        if suspended:
            await self.save("awaiting")
            raise Suspend
        return {name: results[name] for name in names}

    # --- checkpoints --------------------------------------------------------------------

    async def save(self, status: Literal["running", "awaiting"]) -> None:
        """Save the run's checkpoint: the state before the step under way, and the step."""
        durable = self.durable
        assert durable is not None
        checkpoint = Checkpoint(
            run_id=self.info.run_id,
            agent=self.info.agent,
            thread_id=self.info.thread_id,
            state=self.state,
            next=durable.names,
            joined={index: sorted(names) for index, names in durable.joined.items()},
            step=durable.step,
            seq=self.tree.seq,
            step_seq=durable.step_seq,
            phase=None if self.phase is None else self.phase.value,
            awaits=list(durable.awaits),
            done={name: (dict(update), goto) for name, (update, goto) in durable.done.items()},
            tools=sorted(self.tree.open_tools),
            status=status,
        )
        await durable.checkpointer.save_checkpoint(
            f"run/{self.info.run_id}", encode_checkpoint(checkpoint)
        )

    async def _open_thread(self, durable: Durable) -> None:
        """Hold the run's thread and start from its last state (input merged in).

        Raises:
            ThreadBusy: another run of the thread is in progress.
        """
        thread_id = self.info.thread_id
        if thread_id is None:
            return
        store = durable.checkpointer
        holder = await store.claim_checkpoint(f"lock/{thread_id}", self.info.run_id)
        if holder != self.info.run_id:
            raise ThreadBusy(
                f"thread {thread_id!r} has a run in progress ({holder}); "
                "a thread runs one run at a time: start this one when that one has ended"
            )
        durable.holds_thread = True
        last = await store.load_checkpoint(f"thread/{thread_id}")
        if last is not None:
            given, self.state = self.state, decode_thread(last, self.spec.types)
            self._merge("input", given)

    async def _ended(self, *, completed: bool) -> None:
        """The run ended: keep a thread's final state, forget the run's checkpoint."""
        durable = self.durable
        assert durable is not None
        store = durable.checkpointer
        thread_id = self.info.thread_id
        if completed and thread_id is not None and durable.holds_thread:
            await store.save_checkpoint(f"thread/{thread_id}", encode_thread(self.state))
        await store.delete_checkpoint(f"run/{self.info.run_id}")
        if durable.holds_thread and thread_id is not None:
            durable.holds_thread = False
            await store.delete_checkpoint(f"lock/{thread_id}")

    def _ended_later(self) -> None:
        """`_ended` for a run cancelled from outside: nothing may be awaited here."""
        if self.durable is not None:
            task = asyncio.get_running_loop().create_task(self._ended(completed=False))
            _CLEANUPS.add(task)
            task.add_done_callback(_cleaned)

    def _resume_marker(self, durable: Durable, resumed: Checkpoint) -> None:
        """Say that the run goes on from a checkpoint; close what the lost step left open."""
        if resumed.phase is not None:
            self.phase = Phase(resumed.phase)
        first, last = resumed.step_seq, self.tree.seq - 1
        self.emit_nowait(
            Custom,
            None,
            RESUMED,
            {
                "reason": durable.reason,
                "step": resumed.step + 1,
                "nodes": [name for name in resumed.next if name not in resumed.done],
                "superseded": [first, last] if last >= first else None,
            },
        )
        lost = ErrorInfo("Superseded", f"the run resumed from its checkpoint ({durable.reason})")
        for cls, info, node, fields in left_open(durable.tail, lost):
            self.tree.emit(cls, info, node, *fields)

    async def _run_node(self, node: NodeSpec) -> tuple[Mapping[str, Any], list[str]]:
        state = dict(self.state)
        args: tuple[Any, ...] = (
            (state, self.tree.context(self, node)) if node.takes_ctx else (state,)
        )
        if node.is_async:
            result = await node.fn(*args)
        else:
            result = await anyio.to_thread.run_sync(lambda: node.fn(*args))
        update, goto = self._split_result(node.name, result)
        await self.emit(StateUpdate, node.name, loose_json(update))
        return update, goto

    def _split_result(self, name: str, result: object) -> tuple[Mapping[str, Any], list[str]]:
        if result is None:
            return {}, []
        if isinstance(result, Command):
            update = result.update or {}
            goto = list(result.targets())
        elif isinstance(result, Mapping):
            update, goto = result, []
        else:
            raise TypeError(
                f"node {name!r} returned {type(result).__name__}; "
                "expected a dict of state updates, a Command, or None"
            )
        if not isinstance(update, Mapping):
            raise TypeError(f"node {name!r}: Command.update must be a dict")
        keys = self.spec.keys
        if keys is not None:
            unknown = [k for k in update if k not in keys]
            if unknown:
                raise KeyError(
                    f"node {name!r} updated {', '.join(map(repr, unknown))}, not in the state "
                    f"schema (keys: {', '.join(sorted(keys))})"
                )
        return update, goto

    def _merge(self, name: str, update: Mapping[str, Any]) -> None:
        state = self.state
        reducers = self.spec.reducers
        for key, value in update.items():
            reducer = reducers.get(key)
            if reducer is not None and key in state:
                try:
                    state[key] = reducer(state[key], value)
                except Exception as exc:
                    raise TypeError(
                        f"reducer of {key!r} failed on the update from node {name!r}: {exc}"
                    ) from exc
            else:
                state[key] = value

    async def _route(self, router: Router) -> Iterable[str]:
        state = dict(self.state)
        picked = await router.fn(state) if router.is_async else router.fn(state)
        where = f"router of {router.source!r}"
        values = list(picked) if isinstance(picked, list | tuple | set | frozenset) else [picked]
        names: list[str] = []
        for value in values:
            if router.path_map is not None:
                try:
                    value = router.path_map[value]
                except (KeyError, TypeError):
                    keys = ", ".join(map(repr, router.path_map))
                    raise RoutingError(
                        f"{where} returned {value!r}, which is not in its path_map ({keys})"
                    ) from None
            if value == END:
                continue
            self._check_node(value, where)
            names.append(value)
        return names

    def _check_node(self, name: object, where: str) -> None:
        if not isinstance(name, str) or name not in self.spec.nodes:
            known = ", ".join(sorted(self.spec.nodes))
            raise RoutingError(f"{where} returned {name!r}, which is not a node ({known}, END)")


def left_open(
    tail: Iterable[Event], error: ErrorInfo
) -> list[tuple[type[Any], RunInfo, str | None, tuple[Any, ...]]]:
    """The events that close what `tail` opened and never closed, innermost first.

    A message without its `done=True` chunk gets an empty one, a tool call
    without `ToolEnd` gets one with `error`, a child run without its end gets
    `Workflow(canceled)` with `error`.
    """
    opened: dict[tuple[str, str], tuple[type[Any], RunInfo, str | None, tuple[Any, ...]]] = {}
    for event in tail:
        if isinstance(event, AssistantReply | PlannerThought):
            key = ("message", event.message_id)
            if event.done:
                opened.pop(key, None)
            elif key not in opened:
                fields = ("", event.message_id, True, event.internal)
                opened[key] = (type(event), event.run, event.node, fields)
        elif isinstance(event, ToolStart):
            ended = (event.tool_call_id, event.tool_name, None, error, 0.0)
            opened[("tool", event.tool_call_id)] = (ToolEnd, event.run, event.node, ended)
        elif isinstance(event, ToolEnd):
            opened.pop(("tool", event.tool_call_id), None)
        elif isinstance(event, AgentRunStarted):
            child = RunInfo(
                event.child_run_id, event.child_agent, event.run.run_id, event.run.thread_id
            )
            opened[("run", child.run_id)] = (Workflow, child, None, (Phase.CANCELED, error))
        elif isinstance(event, Workflow) and event.phase.is_terminal:
            opened.pop(("run", event.run.run_id), None)
    return list(reversed(opened.values()))


def check_progress(progress: float | None) -> float | None:
    """Validate a tool's progress fraction."""
    if progress is None:
        return None
    if (
        not isinstance(progress, int | float)
        or not (0.0 <= progress <= 1.0)
        or math.isnan(progress)
    ):
        raise ValueError(f"progress must be a number from 0 to 1, got {progress!r}")
    return float(progress)
