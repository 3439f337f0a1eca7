"""`RunContext`: what a node uses to emit events and call tools and agents."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

import anyio
import anyio.lowlevel

from .._ids import short_id
from ..codec import EncodeError, jsonable, loose_json
from ..events import (
    JSON,
    AgentRunStarted,
    AssistantReply,
    AwaitClarification,
    AwaitExternalTools,
    Custom,
    ErrorInfo,
    Phase,
    PlannerThought,
    StateUpdate,
    ToolCall,
    ToolEnd,
    ToolStart,
    ToolUpdate,
    Usage,
    Workflow,
)
from ..models import ChatModel, Message, generate
from ._checkpoint import Await
from ._engine import YIELD_EVERY, Run, Suspend, check_progress
from ._errors import RunFailed
from ._inbox import Inbox
from ._spec import Graph, NodeSpec

__all__ = ["RunContext", "TextStream", "ToolCallHandle"]


_time = time.time
_build_custom = cast(Any, Custom)._build


def _unwinding(exc: BaseException | None) -> bool:
    """True while a cancellation unwinds: nothing may be awaited then."""
    return exc is not None and isinstance(exc, anyio.get_cancelled_exc_class())


class TextStream:
    """A streamed message: `await write(delta)` per chunk; `done=True` on exit.

    Returned by [`RunContext.stream_reply`][runstream.graph.RunContext.stream_reply]
    and `stream_thought`.
    """

    __slots__ = ("_build", "_cls", "_ctx", "_info", "_internal", "_node", "_tree", "message_id")

    def __init__(self, ctx: RunContext, cls: type[AssistantReply] | type[PlannerThought]) -> None:
        self._ctx = ctx
        self._cls = cls
        self.message_id = short_id("msg")
        # Everything constant for the stream, looked up once: write() is the
        # hottest path of a streaming run.
        self._tree = ctx._run.tree
        self._info = ctx._run.info
        self._node = ctx.node
        self._internal = ctx._internal
        self._build = cast(Any, cls)._build

    async def write(self, delta: str) -> None:
        """Emit one chunk of text (empty deltas are skipped)."""
        if delta.__class__ is not str and not isinstance(delta, str):
            raise TypeError(f"write() takes str, got {type(delta).__name__}")
        if not delta:
            return
        # Tree.emit, inlined for the one event that streams by the thousand.
        tree = self._tree
        flow = tree.flow
        if flow is not None and flow.paused:
            await flow.wait()
        seq = tree.seq
        tree.seq = seq + 1
        event = self._build(
            self._info, self._node, seq, _time(), delta, self.message_id, False, self._internal
        )
        on_next = tree.on_next
        if on_next is not None and not tree.disposed:
            on_next(event)
        if (flow is not None and (flow.paused or flow.nudged)) or not seq % YIELD_EVERY:
            await tree.checkpoint()

    async def __aenter__(self) -> TextStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ctx = self._ctx
        fields = (self._cls, ctx.node, "", self.message_id, True, ctx._internal)
        if _unwinding(exc):
            ctx._run.emit_nowait(*fields)
        else:
            await ctx._run.emit(*fields)


class ToolCallHandle:
    """A running tool call, from `async with ctx.tool(...) as call`.

    Set `call.result` to what the tool produced; `await call.update(...)` reports
    progress. Leaving the block emits `ToolEnd`; an exception inside becomes its
    `error` and is re-raised.
    """

    __slots__ = ("_ctx", "_started", "payload", "result", "tool_call_id", "tool_name")

    def __init__(self, ctx: RunContext, name: str, payload: JSON, tool_call_id: str) -> None:
        self._ctx = ctx
        self.tool_name = name
        self.payload = payload
        self.tool_call_id = tool_call_id
        self.result: Any = None
        self._started = 0.0

    async def update(
        self, progress: float | None = None, message: str | None = None, data: JSON = None
    ) -> None:
        """Emit a `ToolUpdate`: progress from 0 to 1, a status line, or data."""
        ctx = self._ctx
        await ctx._run.emit(
            ToolUpdate,
            ctx.node,
            self.tool_call_id,
            self.tool_name,
            check_progress(progress),
            message,
            jsonable(data, "data"),
        )

    async def __aenter__(self) -> ToolCallHandle:
        ctx = self._ctx
        run = ctx._run
        await run.wait_ready()
        self._started = time.perf_counter()
        tree = run.tree
        fields = (self.tool_call_id, self.tool_name, self.payload)
        tree.open_tools.add(self.tool_call_id)
        if tree.emit(ToolStart, run.info, ctx.node, *fields):
            # The start is out: whatever cuts the wait short must still end the call.
            try:
                await tree.checkpoint()
            except BaseException as exc:
                ctx._end_tool(self, exc)
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._ctx._end_tool(self, exc)
        return False


class RunContext:
    """The `ctx` argument of a node: the run's identity and its emit calls.

    Every emit call is `async`: when the consumer is full it waits (backpressure).
    """

    __slots__ = ("_internal", "_run", "node")

    def __init__(self, run: Run, node: NodeSpec | None) -> None:
        self._run = run
        self.node: str | None = node.name if node is not None else None
        self._internal = node.internal if node is not None else False

    @property
    def run_id(self) -> str:
        """This run's id."""
        return self._run.info.run_id

    @property
    def parent_run_id(self) -> str | None:
        """The run that started this one as a child; None at the root."""
        return self._run.info.parent_run_id

    @property
    def thread_id(self) -> str | None:
        """The conversation this run belongs to, if given."""
        return self._run.info.thread_id

    @property
    def agent(self) -> str:
        """The name of the graph that runs."""
        return self._run.info.agent

    def for_node(self, name: str | None) -> RunContext:
        """This run's context emitting as node `name`.

        For adapters that drive another engine from one node: the events of
        that engine's nodes carry their own names (`ctx.for_node("tools")`).
        """
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"node name must be a non-empty string or None, got {name!r}")
        other = RunContext.__new__(RunContext)
        other._run = self._run
        other.node = name
        other._internal = self._internal
        return other

    async def reply(self, text: str) -> None:
        """Emit a whole reply as one `AssistantReply(done=True)`."""
        await self._run.emit(AssistantReply, self.node, text, short_id("msg"), True, self._internal)

    def stream_reply(self) -> TextStream:
        """Stream a reply: `async with ctx.stream_reply() as m: await m.write(delta)`."""
        return TextStream(self, AssistantReply)

    async def think(self, text: str) -> None:
        """Emit a whole planner thought as one `PlannerThought(done=True)`."""
        await self._run.emit(PlannerThought, self.node, text, short_id("msg"), True, self._internal)

    def stream_thought(self) -> TextStream:
        """Stream a thought, like `stream_reply`."""
        return TextStream(self, PlannerThought)

    def tool(
        self, name: str, payload: object = None, *, tool_call_id: str | None = None
    ) -> ToolCallHandle:
        """A tool call: `ToolStart` on entry, `ToolEnd` (with duration) on exit.

        Example:
            ```python
            async with ctx.tool("search", {"q": q}) as call:
                await call.update(progress=0.5)
                call.result = await search(q)
            ```

        Raises:
            EncodeError: `payload` is not JSON (raised here, before any event).
            ValueError: `tool_call_id` is already used in this run tree.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"tool name must be a non-empty string, got {name!r}")
        payload_json = jsonable({} if payload is None else payload, "payload")
        ids = self._run.tree.tool_ids
        if tool_call_id is None:
            tool_call_id = short_id("call")
        elif tool_call_id in ids:
            raise ValueError(f"tool_call_id {tool_call_id!r} is already used in this run")
        ids.add(tool_call_id)
        return ToolCallHandle(self, name, payload_json, tool_call_id)

    def _end_tool(self, call: ToolCallHandle, exc: BaseException | None) -> None:
        self._run.tree.open_tools.discard(call.tool_call_id)
        error = None
        result: JSON = None
        if exc is not None:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                error = ErrorInfo("Canceled", "the run was canceled")
            elif isinstance(exc, Suspend):
                error = ErrorInfo(
                    "Suspended", "the run waits for an answer; this call runs again after it"
                )
            else:
                error = exc.error if isinstance(exc, RunFailed) else ErrorInfo.from_exception(exc)
        else:
            try:
                result = jsonable(call.result, "result")
            except EncodeError as bad:
                error = ErrorInfo.from_exception(bad)
                self._run.emit_nowait(
                    ToolEnd,
                    self.node,
                    call.tool_call_id,
                    call.tool_name,
                    None,
                    error,
                    time.perf_counter() - call._started,
                )
                raise
        self._run.emit_nowait(
            ToolEnd,
            self.node,
            call.tool_call_id,
            call.tool_name,
            result,
            error,
            time.perf_counter() - call._started,
        )

    async def usage(self, model: str, input_tokens: int, output_tokens: int) -> None:
        """Emit a `Usage` event for one model call."""
        for label, n in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if type(n) is not int or n < 0:
                raise ValueError(f"{label} must be a non-negative int, got {n!r}")
        await self._run.emit(Usage, self.node, model, input_tokens, output_tokens)

    async def custom(self, name: str, data: object = None) -> None:
        """Emit a `Custom` event: your own name and JSON data.

        Raises:
            EncodeError: `data` is not JSON (raised here, before any event).
        """
        run = self._run
        tree = run.tree
        flow = tree.flow
        if flow is not None and flow.paused:
            await flow.wait()
        # Run.emit, inlined with a scalar fast path: a node emitting progress
        # counters in a loop is the commonest custom stream.
        t = data.__class__
        if not (t is int or t is str or data is None or t is bool):
            data = jsonable(data, "data")
        seq = tree.seq
        tree.seq = seq + 1
        event = _build_custom(run.info, self.node, seq, _time(), name, data)
        on_next = tree.on_next
        if on_next is not None and not tree.disposed:
            on_next(event)
        if (flow is not None and (flow.paused or flow.nudged)) or not seq % YIELD_EVERY:
            await tree.checkpoint()

    async def state_update(self, updates: Mapping[str, object]) -> None:
        """Emit a `StateUpdate` for a state changed outside this graph's nodes.

        A node's own return value is reported by the runtime; this is for
        adapters whose engine keeps its own state (values that are not JSON
        are shown by their `repr`).
        """
        if not isinstance(updates, Mapping):
            raise TypeError(f"updates must be a mapping, got {type(updates).__name__}")
        await self._run.emit(StateUpdate, self.node, loose_json(updates))

    async def interrupt(
        self, question: str, *, request_id: str | None = None, tool_call: ToolCall | None = None
    ) -> str:
        """Emit `AwaitClarification` and `Workflow(awaiting)`; return the request id.

        It does not wait: the run ends after this node, and the answer starts
        a new run (how a LangGraph interrupt is resumed). The request id is
        `request_id`, or a fresh one. With `tool_call`, the question asks to
        approve that call (AG-UI and the AI SDK show it as an approval).
        """
        if not isinstance(question, str):
            raise TypeError(f"question must be a str, got {type(question).__name__}")
        if tool_call is not None and not isinstance(tool_call, ToolCall):
            raise TypeError(f"tool_call must be a ToolCall, got {type(tool_call).__name__}")
        request_id = request_id or short_id("ask")
        await self._run.emit(AwaitClarification, self.node, request_id, question, tool_call)
        await self._run.emit(Workflow, self.node, Phase.AWAITING, None)
        return request_id

    async def interrupt_tools(
        self, calls: Sequence[ToolCall], *, request_id: str | None = None
    ) -> str:
        """Emit `AwaitExternalTools` and `Workflow(awaiting)`; return the request id.

        For tool calls the client executes (AG-UI frontend tools, AI SDK
        client-side tools). Like `interrupt`, it does not wait: the run ends,
        and the client sends the results in its next request.
        """
        calls = tuple(calls)
        if not calls or not all(isinstance(c, ToolCall) for c in calls):
            raise TypeError("interrupt_tools needs one or more ToolCall objects")
        request_id = request_id or short_id("tools")
        await self._run.emit(AwaitExternalTools, self.node, request_id, calls)
        await self._run.emit(Workflow, self.node, Phase.AWAITING, None)
        return request_id

    async def phase(self, phase: Phase | str) -> None:
        """Emit a non-terminal `Workflow` phase (planning, executing_tools, ...).

        Raises:
            ValueError: `phase` is unknown or terminal (the runtime ends runs).
        """
        try:
            value = Phase(phase)
        except ValueError:
            known = ", ".join(p.value for p in Phase)
            raise ValueError(f"unknown phase {phase!r}; phases: {known}") from None
        if value.is_terminal or value is Phase.STARTED:
            raise ValueError(
                f"phase {value.value!r} is emitted by the runtime, not by nodes; "
                "end a run by returning, raising, or cancelling"
            )
        self._run.phase = value
        await self._run.emit(Workflow, self.node, value, None)

    async def ask(
        self,
        question: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - how long the user has: DESIGN.md
        tool_call: ToolCall | None = None,
    ) -> Any:
        """Ask the user and wait for the answer; return it (JSON).

        Emits `AwaitClarification` and `Workflow(awaiting)`; once answered
        (`inbox.answer(request_id, value)`), a `Workflow` back to the phase
        the run was in (`planning` if none). With `tool_call`, the question
        asks to approve that call. After `timeout` seconds without an
        answer the run ends `canceled`, its error saying so.

        Raises:
            RuntimeError: the run has no inbox (`app.run(x, inbox=rs.Inbox())`).
        """
        request_id = short_id("ask")
        return await self._await_answer(
            request_id,
            timeout,
            lambda: self.interrupt(question, request_id=request_id, tool_call=tool_call),
        )

    async def external_tools(
        self,
        calls: Sequence[ToolCall],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - how long the client has
    ) -> list[Any]:
        """Hand tool calls to the client and wait for their results, one per call, in order.

        Emits `AwaitExternalTools` and `Workflow(awaiting)`; the answer is a
        list with one result per call (`inbox.answer(request_id, [r1, r2])`:
        any other answer is refused there, and the request stays open).
        Timeout and errors as for `ask`.
        """
        calls = tuple(calls)
        request_id = short_id("tools")
        results: list[Any] = await self._await_answer(
            request_id,
            timeout,
            lambda: self.interrupt_tools(calls, request_id=request_id),
            results=len(calls),
        )
        return results

    async def _await_answer(
        self,
        request_id: str,
        within: float | None,
        request: Callable[[], Awaitable[str]],
        *,
        results: int | None = None,
    ) -> Any:
        """Open the request in the run's inbox, make it (`request()`), wait for the answer.

        In a run with a checkpointer, the question is saved with the run; a
        node that runs again after a resume gets its answer back (or waits
        again under the same request id, without asking again). In a run that
        suspends, the node unwinds (`Suspend`) instead of waiting.
        """
        run = self._run
        durable = run.durable
        entry: Await | None = None
        asked = False
        if durable is not None:
            index = durable.asked.get(self.node, 0)
            durable.asked[self.node] = index + 1
            entry = durable.replay.get((self.node, index))
            asked = entry is not None
            if entry is None:
                entry = Await(request_id, self.node, index, results)
            request_id = entry.request_id
            durable.awaits.append(entry)
            if entry.answered:
                await run.emit(Workflow, self.node, run.phase or Phase.PLANNING, None)
                return entry.value
            if durable.suspend and within is None:
                if not asked:
                    await request()
                raise Suspend
        inbox: Inbox | None = run.tree.inbox
        if inbox is None:
            raise RuntimeError(
                "this run has no inbox to take an answer: run it with "
                "app.run(x, inbox=rs.Inbox()) and answer with inbox.answer(request_id, value)"
            )
        if within is not None and not within > 0:
            raise ValueError(f"timeout must be positive seconds, got {within!r}")
        # Open before the request is out: whoever sees it can answer at once.
        slot = inbox._ask(request_id, run.tree.root_id, results)
        try:
            if not asked:
                await request()
            if durable is not None:
                await run.save("awaiting")
        except BaseException:
            inbox._close(request_id)
            raise
        try:
            value = await inbox._wait(request_id, slot, within)
        except TimeoutError:
            seconds = f"{within:g}"
            run.request_cancel(
                ErrorInfo("TimeoutError", f"no answer to {request_id!r} within {seconds}s")
            )
            await anyio.lowlevel.checkpoint()  # the cancellation lands here
            raise
        if entry is not None:
            entry.answered, entry.value = True, value
        await run.emit(Workflow, self.node, run.phase or Phase.PLANNING, None)
        return value

    async def call_agent(
        self,
        app: Graph,
        input: object,
        *,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
        payload: object = None,
        result: Callable[[dict[str, Any]], object] | None = None,
    ) -> dict[str, Any]:
        """Run `app` as a child of this run, inside a tool call; return its final state.

        Emits `ToolStart`, `AgentRunStarted`, the child's events live (they share
        this run tree's `seq`), then `ToolEnd`.

        Args:
            app: the `CompiledGraph` to run.
            input: the child run's input.
            tool_name: the tool call's name (default: the graph's name).
            tool_call_id: the tool call's id (default: a fresh one).
            payload: the tool call's arguments as `ToolStart.payload` shows them
                (default: `input`).
            result: what `ToolEnd.result` shows, made from the child's final
                state (default: the whole state).

        Raises:
            RunFailed: the child run failed (after its failed event and `ToolEnd`).
        """
        if not isinstance(app, Graph):
            raise TypeError(f"call_agent needs a CompiledGraph, got {type(app).__name__}")
        parent = self._run
        child = parent.spawn(app, input)
        shown = loose_json(input if payload is None else payload)
        async with self.tool(tool_name or app.name, shown, tool_call_id=tool_call_id) as call:
            # No wait between the link and the child's first event: a cancel
            # landing there would leave a child that never started or ended.
            await parent.wait_ready()
            parent.emit_nowait(
                AgentRunStarted,
                self.node,
                call.tool_call_id,
                call.tool_name,
                child.info.run_id,
                child.info.agent,
            )
            await child.execute()
            call.result = loose_json(child.state if result is None else result(child.state))
        return child.state

    async def generate(
        self,
        model: ChatModel,
        messages: Sequence[Message],
        tools: Sequence[Any] = (),
    ) -> Message:
        """Stream one model turn as reply/thought chunks and `Usage`; return the message.

        See [`runstream.models.generate`][runstream.models.generate].
        """
        return await generate(self, model, messages, tools)
