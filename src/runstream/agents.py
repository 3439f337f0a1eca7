"""Tools and the tool-calling agent loop.

[`tool`][runstream.agents.tool] turns a typed function into a
[`Tool`][runstream.agents.Tool] a model can call;
[`create_agent`][runstream.agents.create_agent] builds the usual loop (model →
tools in parallel → model … until a turn calls no tool) as a `CompiledGraph`;
[`agent_tool`][runstream.agents.agent_tool] makes an agent a tool of another
agent, each call a child run whose events stream live in the parent's stream.

Example:
    ```python
    @rs.tool
    async def add(a: int, b: int) -> int:
        \"\"\"Add two integers.\"\"\"
        return a + b

    model = rs.ScriptedModel([rs.Turn(tool_calls=[("add", {"a": 2, "b": 3})]), "It is 5."])
    agent = rs.create_agent(model, tools=[add], instructions="Use the tools.")
    state = await agent.invoke("What is 2 + 3?")
    state["messages"][-1].content  # "It is 5."
    ```
"""

from __future__ import annotations

import functools
import inspect
import json
import operator
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeAlias, TypedDict, overload

import anyio

from ._callables import is_async_callable
from ._schema import ArgSpec, ArgumentError, SchemaError, description_of, validate_arguments
from .codec import loose_json
from .events import JSON, Phase, ToolCall
from .graph import (
    END,
    START,
    Checkpointer,
    CompiledGraph,
    RunContext,
    StateGraph,
    ToolCallHandle,
)
from .models import ChatModel, Message, ToolSpec

__all__ = [
    "AgentState",
    "ArgumentError",
    "MaxTurnsExceeded",
    "SchemaError",
    "Tool",
    "ToolDenied",
    "UnknownToolError",
    "agent_tool",
    "create_agent",
    "tool",
]

_Injected: TypeAlias = Literal["ctx", "call"]
_INJECTABLE: dict[str, _Injected] = {
    RunContext.__name__: "ctx",
    ToolCallHandle.__name__: "call",
}


class MaxTurnsExceeded(RuntimeError):
    """An agent's model still asked for tools after `max_turns` turns."""


class UnknownToolError(LookupError):
    """The model called a tool the agent does not have."""


class AgentState(TypedDict, total=False):
    """The state of a [`create_agent`][runstream.agents.create_agent] graph.

    Attributes:
        messages: the conversation; nodes append to it.
        client_tools: tools the client runs (AG-UI frontend tools, AI SDK
            client-side tools): offered to the model; a call to one ends the
            run with `AwaitExternalTools`, and the client sends the result in
            its next request.
    """

    messages: Annotated[list[Message], operator.add]
    client_tools: list[ToolSpec]


class Tool:
    """A function a model can call, with the JSON Schema of its arguments.

    Made by [`tool`][runstream.agents.tool] (from a function) or
    [`agent_tool`][runstream.agents.agent_tool] (from an agent). Calling a `Tool`
    directly calls the function it wraps.

    Attributes:
        name: the name the model calls it by.
        description: what it does, for the model.
        spec: what a model sees: name, description and parameter schema.
        app: for an agent tool, the graph each call runs as a child run.
        approval: whether each call is asked to the user first (`ctx.ask`
            with the call); a denial is an error the model reads.
    """

    __slots__ = (
        "_args",
        "_fn",
        "_inject",
        "_is_async",
        "app",
        "approval",
        "description",
        "name",
        "spec",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        description: str,
        args: ArgSpec,
        parameters: Mapping[str, JSON] | None = None,
        inject: Mapping[str, _Injected] | None = None,
        app: CompiledGraph | None = None,
        approval: bool = False,
    ) -> None:
        self._fn = fn
        self._args = args
        self._inject: dict[str, _Injected] = dict(inject or {})
        self._is_async = is_async_callable(fn)
        self.name = name
        self.description = description
        self.spec = ToolSpec(name, description, args.schema if parameters is None else parameters)
        self.app = app
        self.approval = approval

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def validate(self, args: object) -> dict[str, Any]:
        """Check the JSON arguments a model sent; return the keyword arguments.

        Raises:
            ArgumentError: naming every problem, in words a model can act on.
        """
        return validate_arguments(self._args, args)

    async def invoke(self, args: object, ctx: RunContext, call: ToolCallHandle | None) -> JSON:
        """Validate `args`, call the tool, and return its result as JSON.

        Sync functions run in a worker thread; parameters annotated with
        `RunContext` or `ToolCallHandle` receive `ctx` and `call`. A result that
        is not JSON is returned as its `str`.

        Raises:
            ArgumentError: `args` do not fit the tool's parameters.
        """
        kwargs = self.validate(args)
        for param, kind in self._inject.items():
            kwargs[param] = ctx if kind == "ctx" else call
        if self.app is not None:
            return await self._run_child(ctx, kwargs["input"], None, dict(kwargs))
        if self._is_async:
            result = await self._fn(**kwargs)
        else:
            result = await anyio.to_thread.run_sync(functools.partial(self._fn, **kwargs))
        return loose_json(result, fallback=str)

    async def _run_child(
        self, ctx: RunContext, text: str, tool_call_id: str | None, arguments: JSON
    ) -> JSON:
        """Run the agent as a child run; its `ToolStart` shows `arguments`, its
        `ToolEnd` (and the model) the content of the child's last message."""
        assert self.app is not None
        state = await ctx.call_agent(
            self.app,
            text,
            tool_name=self.name,
            tool_call_id=tool_call_id,
            payload=arguments,
            result=_final_answer,
        )
        return _final_answer(state)


def _injected_params(fn: Callable[..., Any]) -> dict[str, _Injected]:
    """Parameters annotated with `RunContext` or `ToolCallHandle`: filled in, not sent."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    found: dict[str, _Injected] = {}
    for param in params.values():
        hint = hints.get(param.name, param.annotation)
        if isinstance(hint, str):
            # An annotation that could not be resolved (a TYPE_CHECKING import): go by name.
            label = hint.strip("'\" ").rsplit(".", 1)[-1]
        elif isinstance(hint, type) and issubclass(hint, RunContext | ToolCallHandle):
            label = RunContext.__name__ if issubclass(hint, RunContext) else "ToolCallHandle"
        else:
            continue
        if label in _INJECTABLE:
            found[param.name] = _INJECTABLE[label]
    return found


def _make_tool(
    fn: Callable[..., Any], name: str | None, description: str | None, approval: bool = False
) -> Tool:
    if isinstance(fn, Tool):
        raise TypeError(f"{fn!r} is already a tool")
    if not callable(fn):
        raise TypeError(f"@tool needs a function, got {fn!r}")
    tool_name = name if name is not None else getattr(fn, "__name__", None)
    if not isinstance(tool_name, str) or not tool_name:
        raise TypeError(f"cannot tell the name of {fn!r}; pass @tool(name=...)")
    inject = _injected_params(fn)
    args = ArgSpec.from_function(fn, skip=tuple(inject))
    return Tool(
        fn,
        name=tool_name,
        description=description if description is not None else description_of(fn),
        args=args,
        inject=inject,
        approval=approval,
    )


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, approval: bool = False
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    approval: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function, sync or async, into a [`Tool`][runstream.agents.Tool].

    The name comes from the function, the description from the first paragraph
    of its docstring, and the parameter schema from its annotations (argument
    descriptions from a Google-style `Args:` section). A parameter annotated
    `RunContext` or `ToolCallHandle` is not an argument: it receives the run's
    context or the running call (for `await call.update(progress=...)`).
    With `approval=True`, each call is first put to the user as a question
    about that call (`ctx.ask(..., tool_call=call)`, so the run needs an
    inbox); an answer of `True` or `{"approved": true}` runs it, anything
    else ends it with a `ToolDenied` error the model reads (with the
    answer's `reason`, if any).

    Example:
        ```python
        @rs.tool
        async def search(query: str, call: rs.ToolCallHandle, limit: int = 5) -> list[str]:
            \"\"\"Search the web.\"\"\"
            await call.update(progress=0.5)
            return ["..."]

        @rs.tool(name="calc", description="Evaluate arithmetic.")
        def calculate(expression: str) -> float: ...
        ```

    Raises:
        SchemaError: a parameter has no annotation, or one that JSON cannot
            carry; the message names the parameter.
    """
    if fn is not None:
        return _make_tool(fn, name, description, approval)

    def decorate(f: Callable[..., Any]) -> Tool:
        return _make_tool(f, name, description, approval)

    return decorate


# --- agent_tool -------------------------------------------------------------------


def _agent_tool_args(input: str) -> None:
    """Validation target of an agent tool's arguments."""


_AGENT_ARGS = ArgSpec.from_function(_agent_tool_args)


def agent_tool(app: CompiledGraph, name: str, description: str) -> Tool:
    """Make `app` (usually a [`create_agent`][runstream.agents.create_agent]) a tool.

    The model calls it with `{"input": "<message>"}`; each call runs `app` as a
    child run with that message as the user's input. Its events stream live in
    the parent's stream after an `AgentRunStarted` event, and the tool result
    the model sees is the content of the child's last message.

    Example:
        ```python
        researcher = rs.create_agent(model, tools=[search], name="researcher")
        lead = rs.create_agent(
            lead_model, tools=[rs.agent_tool(researcher, "research", "Research a topic.")]
        )
        ```
    """
    if not isinstance(app, CompiledGraph):
        raise TypeError(f"agent_tool needs a CompiledGraph, got {app!r}")
    if not isinstance(name, str) or not name:
        raise TypeError(f"agent_tool needs a non-empty name, got {name!r}")
    parameters: dict[str, JSON] = {
        "type": "object",
        "properties": {"input": {"type": "string", "description": f"The message for {name}."}},
        "required": ["input"],
        "additionalProperties": False,
    }

    async def call(input: str) -> JSON:
        # Calling the tool directly, outside a run: a root run of its own.
        return _final_answer(await app.invoke(input))

    return Tool(
        call,
        name=name,
        description=description,
        args=_AGENT_ARGS,
        parameters=parameters,
        app=app,
    )


def _final_answer(state: Mapping[str, Any]) -> JSON:
    """What the model sees of a child run: its last message's text, else its state."""
    messages = state.get("messages")
    if isinstance(messages, list) and messages:
        last = messages[-1]
        if isinstance(last, Message):
            return last.content
        if isinstance(last, Mapping) and isinstance(last.get("content"), str):
            content: str = last["content"]
            return content
    return loose_json(dict(state), fallback=str)


# --- create_agent -----------------------------------------------------------------


def _to_tool_call(value: object) -> ToolCall:
    if isinstance(value, ToolCall):
        return value
    if isinstance(value, Mapping):
        try:
            return ToolCall(value["tool_call_id"], value["tool_name"], value.get("payload", {}))
        except KeyError as exc:
            raise ValueError(f"a tool call in the agent input lacks {exc}") from None
    raise TypeError(f"a tool call in the agent input must be a ToolCall or a dict, not {value!r}")


def _to_message(value: object) -> Message:
    if isinstance(value, Message):
        return value
    if isinstance(value, Mapping):
        if "role" not in value:
            raise ValueError(f"a message in the agent input needs a 'role': {value!r}")
        content = value.get("content")
        if not isinstance(content, str | None):
            raise TypeError(f"message content must be a string, not {content!r}")
        return Message(
            value["role"],
            content or "",
            tool_calls=tuple(_to_tool_call(c) for c in value.get("tool_calls") or ()),
            tool_call_id=value.get("tool_call_id"),
        )
    raise TypeError(f"a message in the agent input must be a Message or a dict, not {value!r}")


def _client_tools(value: object) -> list[ToolSpec]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"agent input 'client_tools' must be a list, not {value!r}")
    specs: list[ToolSpec] = []
    for item in value:
        if isinstance(item, ToolSpec):
            specs.append(item)
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ValueError(f"a client tool needs a 'name' string: {item!r}")
        parameters = item.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping):
            raise TypeError(
                f"client tool {item['name']!r}: 'parameters' must be a JSON Schema object"
            )
        specs.append(ToolSpec(item["name"], str(item.get("description") or ""), dict(parameters)))
    return specs


def _input_state(value: object) -> dict[str, Any]:
    """The initial state of an agent run for `value`.

    A string is the user's message; a `Message` is taken as is; a mapping with
    `"messages"` (Message objects or dicts with `role` and `content`) is the
    conversation so far, and its `"client_tools"` (dicts with `name`,
    `description`, `parameters`) the tools the client runs.

    Raises:
        TypeError, ValueError: `value` is none of these.
    """
    if isinstance(value, str):
        return {"messages": [Message("user", value)]}
    if isinstance(value, Message):
        return {"messages": [value]}
    if isinstance(value, Mapping) and "messages" in value:
        messages = value["messages"]
        if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Iterable):
            raise TypeError(f"agent input 'messages' must be a list, not {messages!r}")
        state = {**value, "messages": [_to_message(m) for m in messages]}
        if "client_tools" in value:
            state["client_tools"] = _client_tools(value["client_tools"])
        return state
    raise TypeError(
        f"an agent's input is a string (the user's message) or {{'messages': [...]}}, not {value!r}"
    )


def _as_tool(value: object) -> Tool:
    if isinstance(value, Tool):
        return value
    if isinstance(value, CompiledGraph):
        raise TypeError(
            f"{value!r} is a graph, not a tool; wrap it: agent_tool(app, name, description)"
        )
    if callable(value):
        return _make_tool(value, None, None)
    raise TypeError(f"tools must be Tool objects or functions, not {value!r}")


def _client_only(state: Mapping[str, Any], tools: Mapping[str, Tool]) -> list[ToolSpec]:
    """The client's tools, less any that a tool of the agent's own shadows."""
    return [spec for spec in state.get("client_tools") or () if spec.name not in tools]


def _turns_taken(messages: Sequence[Message]) -> int:
    """Assistant messages since the last user message: the model turns of this request."""
    turns = 0
    for m in reversed(messages):
        if m.role == "user":
            break
        turns += m.role == "assistant"
    return turns


def _error_text(exc: BaseException) -> str:
    return f"Error: {type(exc).__name__}: {exc}"


def _content(result: JSON) -> str:
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False)


async def _run_call(
    ctx: RunContext, tools: Mapping[str, Tool], call: ToolCall, denied: ToolDenied | None
) -> Message:
    """Run one tool call; a failure (or `denied`) becomes an error message the model reads."""
    found = tools.get(call.tool_name)
    try:
        if found is not None and found.app is not None:
            try:
                text = found.validate(call.payload)["input"]
            except ArgumentError:
                pass  # reported below, as a tool call that ends in the error
            else:
                result = await found._run_child(ctx, text, call.tool_call_id, call.payload)
                return Message("tool", _content(result), tool_call_id=call.tool_call_id)
        async with ctx.tool(call.tool_name, call.payload, tool_call_id=call.tool_call_id) as handle:
            if denied is not None:
                raise denied
            if found is None:
                known = ", ".join(sorted(tools)) or "none"
                raise UnknownToolError(f"no tool named {call.tool_name!r} (tools: {known})")
            result = await found.invoke(call.payload, ctx, handle)
            handle.result = result
    except Exception as exc:
        return Message("tool", _error_text(exc), tool_call_id=call.tool_call_id)
    return Message("tool", _content(result), tool_call_id=call.tool_call_id)


class ToolDenied(Exception):
    """The user did not approve a tool call (`@rs.tool(approval=True)`)."""


def _approval_question(call: ToolCall) -> str:
    return f"Allow {call.tool_name}({json.dumps(call.payload, ensure_ascii=False)})?"


def _denial(answer: Any) -> ToolDenied | None:
    """None when `answer` approves the call; else the error the model reads."""
    if answer is True or (isinstance(answer, Mapping) and answer.get("approved") is True):
        return None
    reason = answer.get("reason") if isinstance(answer, Mapping) else None
    text = "the user denied this tool call"
    return ToolDenied(f"{text}: {reason}" if isinstance(reason, str) and reason else text)


def create_agent(
    model: ChatModel,
    tools: Sequence[Tool | Callable[..., Any]] = (),
    name: str = "assistant",
    instructions: str | None = None,
    max_turns: int = 10,
    *,
    external_tools: Sequence[ToolSpec] = (),
    checkpointer: Checkpointer | None = None,
) -> CompiledGraph:
    """Build the tool-calling loop as a graph: model → tools in parallel → model …

    The loop ends when a model turn calls no tool. Its input is a string (the
    user's message) or `{"messages": [...]}`; its final state's `"messages"`
    ends with the assistant's answer. A failing tool call (unknown tool, invalid
    arguments, an exception) ends in a `ToolEnd` with an error, and the model
    sees `"Error: <type>: <message>"` as the result: the run goes on.

    Phases: `planning` before the first model turn, `executing_tools` before
    each round of tool calls, `synthesizing` before each model turn that
    follows tool results.

    Args:
        model: the chat model.
        tools: `Tool`s (plain functions are wrapped with `tool`).
        name: the graph's name, the `agent` of its events.
        instructions: the system prompt, sent before the conversation.
        max_turns: model turns allowed per user message; one more fails the
            run with `MaxTurnsExceeded`.
        external_tools: tools the client runs, by their `ToolSpec`: offered
            to the model; its calls to them go out as one `AwaitExternalTools`
            (`ctx.external_tools`) and the run waits for their results (an
            answer with one result per call), which the model then reads.
        checkpointer: makes the agent's runs durable (`StateGraph.compile`).

    Raises:
        TypeError: `model` is not a `ChatModel`, a tool is not a tool, or an
            external tool is not a `ToolSpec`.
        ValueError: two tools share a name, or `max_turns` is below 1.
    """
    if not isinstance(model, ChatModel):
        raise TypeError(f"create_agent needs a ChatModel (name and stream()), got {model!r}")
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ValueError(f"max_turns must be an int >= 1, got {max_turns!r}")
    by_name: dict[str, Tool] = {}
    for t in map(_as_tool, tools):
        if t.name in by_name:
            raise ValueError(f"two tools are named {t.name!r}")
        by_name[t.name] = t
    tool_list = tuple(by_name.values())
    external: dict[str, ToolSpec] = {}
    for spec in external_tools:
        if not isinstance(spec, ToolSpec):
            raise TypeError(f"external_tools must be ToolSpec objects, not {spec!r}")
        if spec.name in by_name or spec.name in external:
            raise ValueError(f"two tools are named {spec.name!r}")
        external[spec.name] = spec
    system = (Message("system", instructions),) if instructions else ()

    async def call_model(state: AgentState, ctx: RunContext) -> AgentState:
        messages = state.get("messages", [])
        if _turns_taken(messages) >= max_turns:
            raise MaxTurnsExceeded(
                f"agent {name!r} reached max_turns={max_turns} and its model still "
                "calls tools; raise max_turns or check the tools' results"
            )
        after_tools = bool(messages) and messages[-1].role == "tool"
        await ctx.phase(Phase.SYNTHESIZING if after_tools else Phase.PLANNING)
        offered = [*tool_list, *external.values(), *_client_only(state, by_name)]
        reply = await ctx.generate(model, [*system, *messages], offered)
        return {"messages": [reply]}

    def route(state: AgentState) -> Literal["tools", "__end__"]:
        messages = state.get("messages", [])
        return "tools" if messages and messages[-1].tool_calls else END

    def after_tools(state: AgentState) -> Literal["model", "__end__"]:
        # Calls left without a result are the client's: the run ends for it to run them.
        messages = state.get("messages", [])
        answered = {m.tool_call_id for m in messages if m.role == "tool"}
        asked = next((m for m in reversed(messages) if m.role == "assistant"), None)
        if asked is not None and any(c.tool_call_id not in answered for c in asked.tool_calls):
            return END
        return "model"

    async def run_tools(state: AgentState, ctx: RunContext) -> AgentState:
        await ctx.phase(Phase.EXECUTING_TOOLS)
        client = {spec.name for spec in _client_only(state, by_name)} - external.keys()
        asked = state["messages"][-1].tool_calls
        for_client = [c for c in asked if c.tool_name in client]
        if for_client:
            await ctx.interrupt_tools(for_client)
        # The client's results first: a run that resumes after this question
        # runs this node again, and the agent's own tools then run once.
        handed = [c for c in asked if c.tool_name in external]
        answers = await ctx.external_tools(handed) if handed else []
        results = {
            c.tool_call_id: Message("tool", _content(r), tool_call_id=c.tool_call_id)
            for c, r in zip(handed, answers, strict=True)
        }
        calls = [c for c in asked if c.tool_name not in client and c.tool_name not in external]

        # Every approval before any tool runs: a run suspended on a question
        # runs this node again, and nothing has run twice.
        denied: dict[str, ToolDenied | None] = {}
        for call in calls:
            found = by_name.get(call.tool_name)
            if found is not None and found.approval and found.app is None:
                question = _approval_question(call)
                denied[call.tool_call_id] = _denial(await ctx.ask(question, tool_call=call))

        async def one(call: ToolCall) -> None:
            results[call.tool_call_id] = await _run_call(
                ctx, by_name, call, denied.get(call.tool_call_id)
            )

        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(one, call)
        return {"messages": [results[c.tool_call_id] for c in asked if c.tool_call_id in results]}

    g = StateGraph(AgentState, name=name)
    g.add_node("model", call_model)
    g.add_node("tools", run_tools)
    g.add_edge(START, "model")
    g.add_conditional_edges("model", route)
    g.add_conditional_edges("tools", after_tools)
    # Each turn is two steps (model, tools): never let the step limit preempt max_turns.
    return g.compile(
        max_steps=max(50, 2 * max_turns + 1),
        input_adapter=_input_state,
        checkpointer=checkpointer,
    )
