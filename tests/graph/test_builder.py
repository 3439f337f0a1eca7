"""StateGraph construction and the checks of compile()."""

from __future__ import annotations

from typing import Literal

import pytest

import runstream as rs


async def noop(state: dict[str, object]) -> None:
    return None


def graph(*nodes: str) -> rs.StateGraph:
    g = rs.StateGraph(name="g")
    for name in nodes:
        g.add_node(name, noop)
    return g


def test_compile_rejects_a_graph_without_entry() -> None:
    g = graph("a")
    with pytest.raises(rs.GraphError, match="no entry"):
        g.compile()


def test_compile_names_the_unknown_node_of_an_edge() -> None:
    g = graph("a")
    g.add_edge(rs.START, "a")
    g.add_edge("a", "missing")
    with pytest.raises(rs.GraphError, match="unknown node 'missing'"):
        g.compile()


def test_compile_names_the_unknown_source_of_an_edge() -> None:
    g = graph("a")
    g.add_edge(rs.START, "a")
    g.add_edge("ghost", "a")
    with pytest.raises(rs.GraphError, match="'ghost'"):
        g.compile()


def test_compile_names_an_unreachable_node() -> None:
    g = graph("a", "island")
    g.add_edge(rs.START, "a")
    with pytest.raises(rs.GraphError, match="node 'island' can never be reached"):
        g.compile()


def test_a_node_behind_a_fan_in_with_an_unreachable_source_is_unreachable() -> None:
    g = graph("a", "b", "join")
    g.add_edge(rs.START, "a")
    g.add_edge(["a", "b"], "join")
    with pytest.raises(rs.GraphError, match="'b' can never be reached"):
        g.compile()


def test_path_map_and_literal_annotations_make_routes_known() -> None:
    def route(state: dict[str, object]) -> Literal["b", "__end__"]:
        return "b"

    g = graph("a", "b", "c")
    g.add_edge(rs.START, "a")
    g.add_conditional_edges("a", route)
    g.add_conditional_edges("b", lambda s: "x", {"x": "c"})
    assert g.compile().nodes == ("a", "b", "c")

    g = graph("a", "b", "orphan")
    g.add_edge(rs.START, "a")
    g.add_conditional_edges("a", route)
    with pytest.raises(rs.GraphError, match="'orphan' can never be reached"):
        g.compile()


def test_a_router_without_known_targets_may_reach_any_node() -> None:
    g = graph("a", "b")
    g.add_edge(rs.START, "a")
    g.add_conditional_edges("a", lambda s: "b")
    g.compile()


def test_route_targets_must_exist() -> None:
    g = graph("a")
    g.add_edge(rs.START, "a")
    g.add_conditional_edges("a", lambda s: "x", ["nowhere"])
    with pytest.raises(rs.GraphError, match="'nowhere'"):
        g.compile()


def test_declared_destinations_make_command_targets_reachable() -> None:
    g = rs.StateGraph(name="g")
    g.add_node("a", noop, destinations=["b"])
    g.add_node("b", noop)
    g.add_edge(rs.START, "a")
    g.compile()


@pytest.mark.parametrize("name", [rs.START, rs.END, ""])
def test_reserved_or_empty_node_names_are_refused(name: str) -> None:
    with pytest.raises(rs.GraphError):
        rs.StateGraph().add_node(name, noop)


def test_duplicate_nodes_and_bad_functions_are_refused() -> None:
    g = graph("a")
    with pytest.raises(rs.GraphError, match="already"):
        g.add_node("a", noop)
    with pytest.raises(rs.GraphError, match="not callable"):
        g.add_node("b", 42)  # type: ignore[arg-type]

    async def three(a: object, b: object, c: object) -> None: ...

    with pytest.raises(rs.GraphError, match=r"\(state\) or \(state, ctx\)"):
        g.add_node("c", three)


def test_add_node_takes_the_function_name() -> None:
    async def search(state: dict[str, object]) -> None: ...

    g = rs.StateGraph(name="g").add_node(search)
    g.add_edge(rs.START, "search")
    assert g.compile().nodes == ("search",)


def test_edges_refuse_end_as_source_and_start_as_target() -> None:
    g = graph("a")
    with pytest.raises(rs.GraphError):
        g.add_edge(rs.END, "a")
    with pytest.raises(rs.GraphError):
        g.add_edge("a", rs.START)
    with pytest.raises(rs.GraphError):
        g.add_edge([rs.START, "a"], "a")
