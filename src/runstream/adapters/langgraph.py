"""A LangGraph graph's run as a runstream event stream (extra `langgraph`).

```python
from runstream.adapters.langgraph import from_langgraph

async for event in from_langgraph(graph, {"messages": [("user", "Weather in Oslo?")]}):
    ...
```
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from contextlib import aclosing
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ..graph import CompiledGraph, RunContext, RunFailed, RunStream, TextStream, ToolCallHandle
from ._one_node import one_node

try:
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
    from langgraph.types import Interrupt
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f'runstream.adapters.langgraph needs langgraph: pip install "runstream[langgraph]" ({exc})'
    ) from None

__all__ = ["ToolError", "as_graph", "from_langgraph"]

STREAM_MODES = ["messages", "custom", "updates", "tasks"]
"""What the adapter asks `astream` for (with `subgraphs=True`)."""

CUSTOM = "langgraph"
"""The `Custom.name` of what a node writes with LangGraph's stream writer."""


class ToolError(Exception):
    """A tool call LangGraph reported as failed (`ToolMessage.status == "error"`):
    its `ToolEnd` carries this as the error, with the message the model read."""


def from_langgraph(
    graph: Any, input: Any, config: Mapping[str, Any] | None = None, *, name: str | None = None
) -> RunStream:
    """A cold event stream of `graph.astream(input, config)`.

    Every subscription runs the graph once, with `stream_mode=["messages",
    "custom", "updates", "tasks"]` and `subgraphs=True`. Chat model output
    becomes streamed `AssistantReply` messages (one `message_id` per LangChain
    message, closed with `done=True`) and `PlannerThought` messages for
    reasoning; the tool calls a model asks for are `ToolStart` events when its
    message ends and `ToolEnd` events when their `ToolMessage` arrives (an
    error status becomes a `ToolError`); `usage_metadata` becomes `Usage`;
    what a node writes to the stream writer becomes `Custom(name="langgraph")`;
    each node's update becomes a `StateUpdate` of that node; an interrupt
    becomes `AwaitClarification` (its `request_id` is the interrupt's id) and
    `Workflow(awaiting)`, and the run then completes, as LangGraph's does.
    A subgraph's run is a child run, linked by `AgentRunStarted` to a tool call
    named after the node that ran it. An exception fails the run
    (`Workflow(failed)`, then `RunFailed`); disposing the stream cancels the
    graph's run.

    Args:
        graph: a compiled LangGraph graph (anything with LangGraph's `astream`).
        input: the graph's input, or a `Command` (`Command(resume=...)`
            answers an interrupt on the same thread).
        config: LangGraph's run config. A run started with a `thread_id`
            (`app.run(x, thread_id=t)`, `POST /runs`) passes it as
            `configurable.thread_id` unless the config names one.
        name: the run's `agent` name (default: the graph's `name`).
    """
    return as_graph(graph, config, name=name).run(input)


def as_graph(
    graph: Any, config: Mapping[str, Any] | None = None, *, name: str | None = None
) -> CompiledGraph:
    """The LangGraph graph as a `CompiledGraph` whose input is the graph's input.

    What a `Runtime`, `create_app` or `runstream serve` needs in a graph
    mapping: `{"weather": as_graph(graph)}` serves it by name, and `POST /runs`
    with `{"graph": "weather", "input": {...}}` runs it. Each run is
    `from_langgraph(graph, input, config, name=name)`.
    """
    if not callable(getattr(graph, "astream", None)):
        raise TypeError(f"from_langgraph needs a compiled LangGraph graph, got {graph!r}")
    title = name or getattr(graph, "name", None) or "LangGraph"

    async def drive(input: Any, ctx: RunContext) -> None:
        await _drive(graph, input, _config(config, ctx), ctx)

    return one_node(title, "langgraph", drive)


def _config(config: Mapping[str, Any] | None, ctx: RunContext) -> dict[str, Any]:
    merged = dict(config or {})
    if ctx.thread_id is not None:
        configurable = dict(merged.get("configurable") or {})
        configurable.setdefault("thread_id", ctx.thread_id)
        merged["configurable"] = configurable
    return merged


async def _drive(graph: Any, input: Any, config: dict[str, Any], ctx: RunContext) -> None:
    async with anyio.create_task_group() as tg:
        driver = _Driver(_Scope(ctx, None), tg)
        # Closing LangGraph's stream cancels its tasks and awaits them. Under the
        # run's cancel scope (level-triggered) those awaits would be cancelled
        # too and its tasks left running; so the stream is read in an asyncio
        # task of its own, cancelled once and awaited to its end.
        reading = asyncio.create_task(driver.read(graph, input, config))
        try:
            await asyncio.shield(reading)
        except asyncio.CancelledError:
            if reading.done():
                raise
            reading.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([reading])
            failure = None if reading.cancelled() else reading.exception()
            if failure is not None:
                raise failure from None
            raise


class _Message:
    """One LangChain message being streamed: its text, reasoning, tool calls, usage."""

    def __init__(self, scope: _Scope, ctx: RunContext, node: str | None) -> None:
        self.scope = scope
        self.ctx = ctx
        self.node = node
        self.reply: TextStream | None = None
        self.thought: TextStream | None = None
        self.calls: dict[int, dict[str, str]] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.model: str | None = None

    async def add(self, chunk: AIMessageChunk, metadata: Mapping[str, Any]) -> None:
        thought, text = _texts(chunk)
        if thought:
            self.thought = await self._write(self.thought, thought, thinking=True)
        if text:
            if self.thought is not None:
                thought_stream, self.thought = self.thought, None
                await thought_stream.__aexit__(None, None, None)
            self.reply = await self._write(self.reply, text, thinking=False)
        for fragment in chunk.tool_call_chunks:
            index = fragment.get("index")
            call = self.calls.setdefault(
                len(self.calls) if index is None else index, {"id": "", "name": "", "args": ""}
            )
            call["id"] = call["id"] or (fragment.get("id") or "")
            call["name"] = call["name"] or (fragment.get("name") or "")
            call["args"] += fragment.get("args") or ""
        usage = chunk.usage_metadata
        if usage:
            self.input_tokens += usage.get("input_tokens", 0)
            self.output_tokens += usage.get("output_tokens", 0)
        self.model = _model_name(chunk, metadata) or self.model

    async def whole(self, message: AIMessage, metadata: Mapping[str, Any]) -> None:
        """A message a node returned whole: one event per text, not a stream."""
        thought, text = _texts(message)
        if thought:
            await self.ctx.think(thought)
        if text:
            await self.ctx.reply(text)
        for index, call in enumerate(message.tool_calls):
            self.calls[index] = {
                "id": call["id"] or "",
                "name": call["name"],
                "args": json.dumps(call["args"]),
            }
        usage = message.usage_metadata
        if usage:
            self.input_tokens += usage.get("input_tokens", 0)
            self.output_tokens += usage.get("output_tokens", 0)
        self.model = _model_name(message, metadata)

    async def _write(self, stream: TextStream | None, delta: str, *, thinking: bool) -> TextStream:
        if stream is None:
            opened = self.ctx.stream_thought() if thinking else self.ctx.stream_reply()
            stream = await opened.__aenter__()
        await stream.write(delta)
        return stream

    async def end(self, driver: _Driver) -> None:
        """Close the texts; report usage; start the tool calls the model asked for."""
        for stream in (self.thought, self.reply):
            if stream is not None:
                await stream.__aexit__(None, None, None)
        self.thought = self.reply = None
        if self.input_tokens or self.output_tokens:
            await self.ctx.usage(self.model or "unknown", self.input_tokens, self.output_tokens)
        for index in sorted(self.calls):
            call = self.calls[index]
            args = _arguments(call["args"])
            await driver.start_tool(self.scope, self.ctx, call["name"], args, call["id"])

    async def abandon(self, exc: BaseException) -> None:
        """End the open texts as the run fails or unwinds a cancellation."""
        for stream in (self.thought, self.reply):
            if stream is not None:
                await stream.__aexit__(type(exc), exc, None)
        self.thought = self.reply = None


class _Scope:
    """A namespace of the LangGraph run: the root, or a subgraph as a child run."""

    def __init__(self, ctx: RunContext | None, parent: _Scope | None) -> None:
        self.ctx = ctx
        self.parent = parent
        self.messages: dict[str, _Message] = {}
        self.running: dict[str, str] = {}  # task id -> node name
        self.inputs: dict[str, Any] = {}  # task id -> its input
        self.ready = anyio.Event()
        self.done = anyio.Event()
        self.ended = anyio.Event()
        self.error: BaseException | None = None
        self.result: Any = None

    def node(self) -> str | None:
        """The node running in this namespace, when exactly one is."""
        names = set(self.running.values())
        return names.pop() if len(names) == 1 else None

    async def close_messages(self, driver: _Driver, node: str | None = None) -> None:
        for key, message in list(self.messages.items()):
            if node is None or message.node == node:
                del self.messages[key]
                await message.end(driver)


class _Driver:
    """Dispatches `astream` items to the run (or child run) of their namespace."""

    def __init__(self, root: _Scope, tg: TaskGroup) -> None:
        self.tg = tg
        self.scopes: dict[tuple[str, ...], _Scope] = {(): root}
        self.calls: dict[str, tuple[_Scope, ToolCallHandle]] = {}
        self.interrupts: set[str] = set()

    async def on(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> None:
        scope = await self.scope(namespace)
        ctx = scope.ctx
        assert ctx is not None
        if mode == "messages":
            message, metadata = chunk
            await self.message(scope, message, metadata)
        elif mode == "updates":
            for node, update in chunk.items():
                if node == "__interrupt__":
                    await self.interrupt(ctx.for_node(scope.node()), update)
                else:
                    await ctx.for_node(node).state_update(_updates(update))
        elif mode == "tasks":
            await self.task(scope, namespace, chunk)
        elif mode == "custom":
            await ctx.for_node(scope.node()).custom(CUSTOM, _plain(chunk))

    async def scope(self, namespace: tuple[str, ...]) -> _Scope:
        """The scope of `namespace`; a subgraph's first item starts its child run."""
        found = self.scopes.get(namespace)
        if found is not None:
            return found
        parent = await self.scope(namespace[:-1])
        node, _, task_id = namespace[-1].partition(":")
        scope = _Scope(None, parent)
        self.scopes[namespace] = scope
        self.tg.start_soon(self._child, parent, scope, node, task_id)
        await scope.ready.wait()
        return scope

    async def _child(self, parent: _Scope, scope: _Scope, node: str, task_id: str) -> None:
        async def body(_: Any, ctx: RunContext) -> None:
            scope.ctx = ctx
            scope.ready.set()
            # The reader ends this run (`finish`), after its own subgraphs: a
            # cancellation of the whole run waits for that too.
            with anyio.CancelScope(shield=True):
                await scope.done.wait()
            try:
                await anyio.lowlevel.checkpoint_if_cancelled()
                if scope.error is not None:
                    raise scope.error
            except BaseException as exc:
                await self.abandon(scope, exc)
                raise

        assert parent.ctx is not None
        try:
            await parent.ctx.for_node(node).call_agent(
                one_node(node, node, body),
                None,
                tool_name=node,
                tool_call_id=task_id or None,
                payload=_plain(parent.inputs.get(task_id, {})),
                result=lambda _: scope.result,
            )
        except RunFailed:
            pass  # in the child's events and its ToolEnd; the parent fails by itself
        finally:
            scope.ready.set()
            scope.ended.set()

    async def message(self, scope: _Scope, message: Any, metadata: Mapping[str, Any]) -> None:
        ctx = scope.ctx
        assert ctx is not None
        node = metadata.get("langgraph_node")
        if isinstance(message, ToolMessage):
            await self.end_tool(scope, ctx.for_node(node), message)
            return
        if not isinstance(message, AIMessage):
            return  # user and system messages are input, not output
        key = message.id or f"{node}:{id(message)}"
        streaming = isinstance(message, AIMessageChunk)
        current = scope.messages.get(key)
        if current is None:
            current = _Message(scope, ctx.for_node(node), node)
            scope.messages[key] = current
        if isinstance(message, AIMessageChunk):
            await current.add(message, metadata)
        else:
            await current.whole(message, metadata)
        if not streaming or getattr(message, "chunk_position", None) == "last":
            del scope.messages[key]
            await current.end(self)

    async def start_tool(
        self, scope: _Scope, ctx: RunContext, name: str, args: Any, call_id: str
    ) -> None:
        try:
            handle = ctx.tool(name or "tool", args, tool_call_id=call_id or None)
        except ValueError:  # the id is taken in this run tree: keep the call, not the id
            handle = ctx.tool(name or "tool", args)
        self.calls[call_id or handle.tool_call_id] = (scope, await handle.__aenter__())

    async def end_tool(self, scope: _Scope, ctx: RunContext, message: ToolMessage) -> None:
        found = self.calls.pop(message.tool_call_id, None)
        if found is None:  # a tool run without a model asking for it
            await self.start_tool(scope, ctx, message.name or "tool", {}, message.tool_call_id)
            found = self.calls.pop(message.tool_call_id)
        handle = found[1]
        content = _plain(message.content)
        if message.status == "error":
            error = ToolError(content if isinstance(content, str) else json.dumps(content))
            await handle.__aexit__(ToolError, error, None)
        else:
            handle.result = content
            await handle.__aexit__(None, None, None)

    async def interrupt(self, ctx: RunContext, interrupts: Any) -> None:
        for item in interrupts:
            request_id = item.id if isinstance(item, Interrupt) else None
            if request_id in self.interrupts:
                continue  # a subgraph's interrupt is reported by its parents too
            if request_id is not None:
                self.interrupts.add(request_id)
            value = _plain(item.value if isinstance(item, Interrupt) else item)
            question = value if isinstance(value, str) else json.dumps(value)
            await ctx.interrupt(question, request_id=request_id)

    async def task(
        self, scope: _Scope, namespace: tuple[str, ...], task: Mapping[str, Any]
    ) -> None:
        task_id, node = task["id"], task["name"]
        if "input" in task:  # a node starts
            scope.running[task_id] = node
            scope.inputs[task_id] = task["input"]
            return
        scope.running.pop(task_id, None)
        scope.inputs.pop(task_id, None)
        await scope.close_messages(self, node)
        child = self.scopes.pop((*namespace, f"{node}:{task_id}"), None)
        if child is not None:
            error = task.get("error")
            child.result = _plain(task.get("result"))
            await self.finish(child, error if isinstance(error, BaseException) else None)

    async def finish(self, scope: _Scope, error: BaseException | None) -> None:
        """End a child run: its subgraphs first, then its messages, then the run."""
        for namespace, other in list(self.scopes.items()):
            if other.parent is scope:
                del self.scopes[namespace]
                await self.finish(other, error)
        if error is None:
            await scope.close_messages(self)
        scope.error = error
        scope.done.set()
        await scope.ended.wait()

    async def read(self, graph: Any, input: Any, config: dict[str, Any]) -> None:
        """Read the graph's stream to its end, then end what is still open."""
        try:
            stream = graph.astream(input, config, stream_mode=STREAM_MODES, subgraphs=True)
            async with aclosing(stream) as items:
                async for namespace, mode, chunk in items:
                    await self.on(tuple(namespace), mode, chunk)
        except BaseException as exc:
            await self.end(exc)
            raise
        await self.end(None)

    async def end(self, exc: BaseException | None) -> None:
        """The LangGraph run ended: end every child run, then the root's messages."""
        root = self.scopes[()]
        for namespace, scope in list(self.scopes.items()):
            if scope.parent is root:
                del self.scopes[namespace]
                await self.finish(scope, exc)
        if exc is None:
            await root.close_messages(self)
        else:
            await self.abandon(root, exc)

    async def abandon(self, scope: _Scope, exc: BaseException) -> None:
        """End a scope's texts and tool calls with `exc`, as its run fails or unwinds.

        Under cancellation nothing here waits: ending a text or a call then
        emits without waiting for demand.
        """
        for message in list(scope.messages.values()):
            await message.abandon(exc)
        scope.messages.clear()
        for call_id, (owner, handle) in list(self.calls.items()):
            if owner is scope:
                del self.calls[call_id]
                await handle.__aexit__(type(exc), exc, None)


def _texts(chunk: AIMessage) -> tuple[str, str]:
    """(reasoning, text) of a chunk, from string or block content."""
    content = chunk.content
    thought = chunk.additional_kwargs.get("reasoning_content") or ""
    if isinstance(content, str):
        return str(thought), content
    texts: list[str] = []
    thoughts: list[str] = [str(thought)] if thought else []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, Mapping):
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text", "")))
            elif kind in ("reasoning", "thinking"):
                thoughts.append(str(block.get(kind, "")))
    return "".join(thoughts), "".join(texts)


def _model_name(chunk: AIMessage, metadata: Mapping[str, Any]) -> str | None:
    found = chunk.response_metadata.get("model_name") or metadata.get("ls_model_name")
    return str(found) if found else None


def _arguments(text: str) -> Any:
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text  # what the model sent, for the reader to see


def _updates(update: Any) -> dict[str, Any]:
    if update is None:
        return {}
    plain = _plain(update)
    return plain if isinstance(plain, dict) else {"value": plain}


def _plain(value: Any) -> Any:
    """LangGraph values as JSON-friendly data: messages as small dicts."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, BaseMessage):
        out: dict[str, Any] = {"type": value.type, "content": _plain(value.content)}
        if value.id:
            out["id"] = value.id
        if isinstance(value, AIMessage) and value.tool_calls:
            out["tool_calls"] = [
                {"id": c["id"], "name": c["name"], "args": _plain(c["args"])}
                for c in value.tool_calls
            ]
        if isinstance(value, ToolMessage):
            out.update(tool_call_id=value.tool_call_id, status=value.status)
        if value.name:
            out["name"] = value.name
        return out
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _plain(dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    return repr(value)
