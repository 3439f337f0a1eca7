"""Building a graph: nodes, edges, routers, reducers, and the checks of `compile()`."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal

from .._callables import is_async_callable
from ._checkpoint import Checkpointer, state_types
from ._compiled import DEFAULT_MAX_STEPS, CompiledGraph
from ._errors import GraphError
from ._spec import END, START, GraphSpec, NodeSpec, Reducer, Router

__all__ = ["StateGraph"]


def _arity(fn: Callable[..., Any], what: str) -> int:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return 1
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    if not 1 <= len(positional) <= 2:
        raise GraphError(f"{what} must take (state) or (state, ctx); it takes {len(positional)}")
    return len(positional)


def _literal_targets(fn: Callable[..., Any]) -> tuple[str, ...] | None:
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:
        return None
    names: list[str] = []

    def collect(t: Any) -> bool:
        origin = typing.get_origin(t)
        if origin is Literal:
            names.extend(a for a in typing.get_args(t) if isinstance(a, str))
            return True
        if origin in (list, Sequence, tuple, typing.Union) or str(origin) == "types.UnionType":
            return all(collect(a) for a in typing.get_args(t) if a is not Ellipsis)
        return False

    return tuple(names) if hint is not None and collect(hint) else None


def _reducers(schema: Any) -> tuple[dict[str, Reducer], frozenset[str] | None]:
    if schema is None or schema is dict:
        return {}, None
    try:
        hints = typing.get_type_hints(schema, include_extras=True)
    except Exception as exc:
        raise GraphError(f"cannot read the state schema {schema!r}: {exc}") from exc
    reducers: dict[str, Reducer] = {}
    for key, hint in hints.items():
        if typing.get_origin(hint) is typing.Annotated:
            for meta in reversed(hint.__metadata__):
                if callable(meta):
                    reducers[key] = meta
                    break
    return reducers, frozenset(hints)


class StateGraph:
    """A graph of nodes over a shared state, run in bulk-synchronous steps.

    Example:
        ```python
        g = rs.StateGraph(State, name="researcher")
        g.add_node("search", search)
        g.add_edge(rs.START, "search")
        app = g.compile()
        ```

    Args:
        state_schema: a `TypedDict` whose `Annotated[T, reducer]` keys are merged
            with their reducer instead of replaced; `dict` or None for a free-form
            state.
        name: the graph's name, carried by its events as `agent`.
    """

    def __init__(self, state_schema: Any = None, *, name: str = "graph") -> None:
        self.name = name
        self._schema = state_schema
        self._nodes: dict[str, NodeSpec] = {}
        self._edges: list[tuple[tuple[str, ...], str]] = []
        self._routers: list[Router] = []

    def add_node(
        self,
        name: str | Callable[..., Any],
        fn: Callable[..., Any] | None = None,
        *,
        internal: bool = False,
        destinations: Sequence[str] = (),
    ) -> StateGraph:
        """Add a node: `fn(state)` or `fn(state, ctx)`, async or sync.

        It returns a dict of state updates, a `Command`, or None. Sync functions
        run in a worker thread and cannot emit events.

        Args:
            name: the node's name (or the function, named after itself).
            fn: the node function.
            internal: the node's replies and thoughts are internal: profiles
                for end users hide them.
            destinations: nodes this node may route to with `Command(goto=...)`.
        """
        if fn is None:
            if not callable(name):
                raise GraphError(f"add_node({name!r}) needs a function")
            fn, name = name, getattr(name, "__name__", "")
        if not isinstance(name, str) or not name:
            raise GraphError(f"node name must be a non-empty string, got {name!r}")
        if name in (START, END):
            raise GraphError(f"{name!r} is reserved and cannot name a node")
        if name in self._nodes:
            raise GraphError(f"node {name!r} is already in the graph")
        if not callable(fn):
            raise GraphError(f"node {name!r}: {fn!r} is not callable")
        arity = _arity(fn, f"node {name!r}")
        self._nodes[name] = NodeSpec(
            name=name,
            fn=fn,
            is_async=is_async_callable(fn),
            takes_ctx=arity == 2,
            internal=internal,
            destinations=tuple(destinations),
        )
        return self

    def add_edge(self, start: str | Sequence[str], end: str) -> StateGraph:
        """Run `end` after `start`; with a list, after every node of it has run."""
        sources = (start,) if isinstance(start, str) else tuple(start)
        if not sources:
            raise GraphError("add_edge needs at least one source node")
        if END in sources:
            raise GraphError("END cannot be the start of an edge")
        if end == START:
            raise GraphError("START cannot be the end of an edge")
        if len(sources) > 1 and START in sources:
            raise GraphError("START cannot be part of a fan-in edge")
        self._edges.append((sources, end))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """After `source`, run what `path(state)` returns: a name, a list of names, or END.

        Args:
            source: the node (or START) the router follows.
            path: the router, sync or async, taking the merged state.
            path_map: maps the router's return values to node names, or lists the
                possible destinations. A `Literal[...]` return annotation counts
                as the list too.
        """
        if not callable(path):
            raise GraphError(f"router of {source!r} is not callable")
        _arity(path, f"router of {source!r}")
        mapping: Mapping[Hashable, str] | None = None
        targets: tuple[str, ...] | None
        if path_map is None:
            targets = _literal_targets(path)
        elif isinstance(path_map, Mapping):
            mapping = dict(path_map)
            targets = tuple(mapping.values())
        else:
            targets = tuple(path_map)
        self._routers.append(Router(source, path, is_async_callable(path), mapping, targets))
        return self

    def compile(
        self,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        input_adapter: Callable[[Any], Mapping[str, Any]] | None = None,
        checkpointer: Checkpointer | None = None,
    ) -> CompiledGraph:
        """Check the graph and freeze it into a runnable `CompiledGraph`.

        Args:
            max_steps: the default step limit of its runs.
            input_adapter: turns what `run(input)` is given into the initial
                state, e.g. a user's message string into `{"messages": [...]}`.
            checkpointer: where the graph's runs save a checkpoint after every
                step (`rs.MemoryCheckpointer()`, `rs.SqliteCheckpointer(path)`,
                a `RedisBus` or `NatsBus`): runs resume after a crash or an
                answer, and `thread_id` runs start from the thread's last state.

        Raises:
            GraphError: no entry edge from START, an edge or route to an unknown
                node, or a node that can never be reached (each named).
        """
        if type(max_steps) is not int or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if checkpointer is not None and not isinstance(checkpointer, Checkpointer):
            raise TypeError(
                f"checkpointer must be a Checkpointer (MemoryCheckpointer, SqliteCheckpointer, "
                f"RedisBus, NatsBus), got {type(checkpointer).__name__}"
            )
        if input_adapter is not None and not callable(input_adapter):
            raise TypeError(f"input_adapter must be callable, got {type(input_adapter).__name__}")
        nodes = self._nodes
        known = set(nodes) | {START, END}

        def check(name: str, where: str) -> None:
            if name not in known:
                hint = f"; nodes: {', '.join(sorted(nodes))}" if nodes else ""
                raise GraphError(f"{where} names unknown node {name!r}{hint}")

        for sources, end in self._edges:
            for s in sources:
                check(s, f"edge {s!r} -> {end!r}")
            check(end, f"edge {sources[0]!r} -> {end!r}")
        for r in self._routers:
            check(r.source, "conditional edge")
            for t in r.targets or ():
                check(t, f"route from {r.source!r}")
        for node_spec in nodes.values():
            for t in node_spec.destinations:
                check(t, f"destinations of {node_spec.name!r}")

        edges: dict[str, list[str]] = {}
        joins: list[tuple[frozenset[str], str]] = []
        for edge_sources, end in self._edges:
            if end == END:
                continue
            if len(edge_sources) == 1:
                edges.setdefault(edge_sources[0], []).append(end)
            else:
                joins.append((frozenset(edge_sources), end))
        routers: dict[str, list[Router]] = {}
        for r in self._routers:
            routers.setdefault(r.source, []).append(r)

        entry = tuple(edges.pop(START, ()))
        entry_routers = tuple(routers.pop(START, ()))
        if not entry and not entry_routers:
            raise GraphError(
                f"graph {self.name!r} has no entry: add an edge from START, "
                "e.g. add_edge(START, 'first_node')"
            )

        # Reachability: static edges, known route targets, declared destinations.
        reachable: set[str] = set()
        frontier = list(entry)
        dynamic = any(r.targets is None for r in entry_routers)
        for r in entry_routers:
            frontier.extend(r.targets or ())
        while frontier and not dynamic:
            name = frontier.pop()
            if name == END or name in reachable:
                continue
            reachable.add(name)
            frontier.extend(edges.get(name, ()))
            frontier.extend(nodes[name].destinations)
            for r in routers.get(name, ()):
                if r.targets is None:
                    dynamic = True
                frontier.extend(r.targets or ())
            for join_sources, join_end in joins:
                if join_sources <= reachable:
                    frontier.append(join_end)
        if not dynamic:
            for name in nodes:
                if name not in reachable:
                    raise GraphError(
                        f"node {name!r} can never be reached from START; add an edge to it, "
                        "or declare it as a destination of the node whose Command goes there "
                        "(add_node(..., destinations=[...]))"
                    )

        reducers, keys = _reducers(self._schema)
        spec = GraphSpec(
            name=self.name,
            nodes=dict(nodes),
            entry=entry,
            entry_routers=entry_routers,
            edges={k: tuple(v) for k, v in edges.items()},
            joins=tuple(joins),
            routers={k: tuple(v) for k, v in routers.items()},
            reducers=reducers,
            keys=keys,
            input_adapter=input_adapter,
            types=state_types(self._schema),
        )
        return CompiledGraph(spec, max_steps=max_steps, checkpointer=checkpointer)
