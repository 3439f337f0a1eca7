"""Executing a run: bulk-synchronous steps, event emission, child runs."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio

from .._flow import Flow
from .._ids import new_id
from ..codec import loose_json
from ..events import ErrorInfo, Event, Phase, RunInfo, StateUpdate, Workflow
from ._errors import RoutingError, RunFailed, StepLimitError
from ._spec import END, Command, Graph, GraphSpec, NodeSpec, Router

__all__ = ["ContextFactory", "Outcome", "Run", "Tree", "check_progress", "first_error"]

_time = time.time
_new = object.__new__
YIELD_EVERY = 512  # emits between cooperative yields, so siblings stream live


ContextFactory = Callable[["Run", NodeSpec], object]
"""Makes the `ctx` argument of a node (the graph package hands in `RunContext`)."""


class Tree:
    """What a root run shares with its children: the seq counter and the consumer."""

    __slots__ = ("context", "disposed", "flow", "inbox", "on_next", "root_id", "seq", "tool_ids")

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
        except BaseException as raw:
            if isinstance(raw, anyio.get_cancelled_exc_class()):
                self.emit_nowait(Workflow, None, Phase.CANCELED, None)
                raise
            exc = first_error(raw)
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                self.emit_nowait(Workflow, None, Phase.CANCELED, None)
                raise exc from None
            error = exc.error if isinstance(exc, RunFailed) else ErrorInfo.from_exception(exc)
            await self.emit(Workflow, None, Phase.FAILED, error)
            raise RunFailed(self.info.run_id, self.info.agent, error) from exc
        if timed_out:
            outcome = Outcome(
                Phase.CANCELED,
                ErrorInfo("TimeoutError", f"run timed out after {self.timeout:g}s"),
            )
        elif scope.cancelled_caught:
            outcome = Outcome(Phase.CANCELED, self.cancel_reason)
        else:
            outcome = Outcome(Phase.COMPLETED)
        if outcome.phase is Phase.COMPLETED:
            await self.emit(Workflow, None, outcome.phase, outcome.error)
        else:
            self.emit_nowait(Workflow, None, outcome.phase, outcome.error)
        return outcome

    # --- steps --------------------------------------------------------------------

    async def _steps(self) -> None:
        spec = self.spec
        triggered = set(spec.entry)
        for router in spec.entry_routers:
            triggered.update(await self._route(router))
        joined: dict[int, set[str]] = {}
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
            results = await self._run_step(names)
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

    async def _run_step(self, names: list[str]) -> dict[str, tuple[Mapping[str, Any], list[str]]]:
        results: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        if len(names) == 1:
            results[names[0]] = await self._run_node(self.spec.nodes[names[0]])
            return results

        async def one(node: NodeSpec) -> None:
            results[node.name] = await self._run_node(node)

        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(one, self.spec.nodes[name])
        return results

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
