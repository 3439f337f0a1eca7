"""Plain values of the graph package: START/END, `Command`, node and graph specs.

This module imports nothing else of `runstream.graph`: the builder produces
these values, the engine runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

__all__ = ["END", "START", "Command", "Graph", "GraphSpec", "NodeSpec", "Reducer", "Router"]

START: Literal["__start__"] = "__start__"
"""The virtual node a graph starts from: `add_edge(START, "first")`."""
END: Literal["__end__"] = "__end__"
"""The virtual node a branch finishes at: a router may return it."""

Reducer = Callable[[Any, Any], Any]


@attrs.frozen
class Command:
    """What a node may return instead of a dict: a state update and where to go next.

    Attributes:
        update: the node's state delta, merged like a returned dict.
        goto: the node or nodes to run in the next step (`END` ends this branch).
    """

    update: Mapping[str, Any] | None = None
    goto: str | Sequence[str] = ()

    def targets(self) -> tuple[str, ...]:
        """`goto` as a tuple of node names."""
        return (self.goto,) if isinstance(self.goto, str) else tuple(self.goto)


@attrs.frozen
class NodeSpec:
    """A node as the engine runs it."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    takes_ctx: bool
    internal: bool
    destinations: tuple[str, ...]


@attrs.frozen
class Router:
    """A conditional edge: `fn(state)` picks the next nodes."""

    source: str
    fn: Callable[..., Any]
    is_async: bool
    path_map: Mapping[Hashable, str] | None
    targets: tuple[str, ...] | None  # statically known destinations, if any


@attrs.frozen
class GraphSpec:
    """Everything `compile()` checked, frozen for the engine."""

    name: str
    nodes: Mapping[str, NodeSpec]
    entry: tuple[str, ...]
    entry_routers: tuple[Router, ...]
    edges: Mapping[str, tuple[str, ...]]
    joins: tuple[tuple[frozenset[str], str], ...]
    routers: Mapping[str, tuple[Router, ...]]
    reducers: Mapping[str, Reducer]
    keys: frozenset[str] | None  # None: any key is allowed
    input_adapter: Callable[[Any], Mapping[str, Any]] | None = None
    types: Mapping[str, Any] = attrs.Factory(dict)  # each state key's type, for checkpoints

    def initial_state(self, input: object) -> dict[str, Any]:
        """The state a run of `input` starts from.

        Raises:
            TypeError: `input` is not a dict of state keys.
            KeyError: `input` has keys that are not in the state schema.
        """
        if self.input_adapter is not None:
            input = self.input_adapter(input)
        if input is None:
            return {}
        if not isinstance(input, Mapping):
            raise TypeError(
                f"input to {self.name!r} must be a dict of state keys, got {type(input).__name__}"
            )
        keys = self.keys
        if keys is not None:
            unknown = [k for k in input if k not in keys]
            if unknown:
                raise KeyError(
                    f"input to {self.name!r} has {', '.join(map(repr, unknown))}, not in the "
                    f"state schema (keys: {', '.join(sorted(keys))})"
                )
        return dict(input)


@runtime_checkable
class Graph(Protocol):
    """What a run needs of a graph to start a child run of it (a `CompiledGraph`)."""

    name: str
    max_steps: int

    @property
    def spec(self) -> GraphSpec: ...
