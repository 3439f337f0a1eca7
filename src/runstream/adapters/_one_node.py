"""The graph every adapter is: one node that drives the other engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..graph import START, CompiledGraph, RunContext, StateGraph

__all__ = ["one_node"]


def one_node(
    name: str, node: str, drive: Callable[[Any, RunContext], Awaitable[None]]
) -> CompiledGraph:
    """A graph named `name` whose one node, `node`, awaits `drive(input, ctx)`."""

    async def run(state: dict[str, Any], ctx: RunContext) -> None:
        await drive(state["input"], ctx)

    graph = StateGraph(name=name)
    graph.add_node(node, run)
    graph.add_edge(START, node)
    return graph.compile(input_adapter=_input)


def _input(value: Any) -> dict[str, Any]:
    return {"input": value}
