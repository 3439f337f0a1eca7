"""Tests for the JSON Schema and argument validation behind `@runstream.tool`."""

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict, Union

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runstream._schema import (
    MAX_PROBLEMS,
    ArgSpec,
    ArgumentError,
    SchemaError,
    description_of,
    signature_schema,
    validate_arguments,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


UserId = NewType("UserId", int)
# The pre-PEP 604 spellings are supported too.
OPTIONAL_INT = Optional[int]  # noqa: UP045
UNION_INT_LIST = Union[int, list[str]]  # noqa: UP007
UNION_COLOR_STR = Union[Color, str]  # noqa: UP007
UNION_STR_COLOR = Union[str, Color]  # noqa: UP007


@dataclasses.dataclass(frozen=True)
class Point:
    """A point on the plane.

    Attributes:
        x: horizontal position.
        y: vertical position.
    """

    x: float
    y: float = 0.0


@attrs.frozen
class Box:
    corner: Point
    size: Annotated[int, "side length"] = 1
    _label: str = "box"


class Filters(TypedDict, total=False):
    kinds: list[Literal["doc", "image"]]
    near: Point
    owner: str


class Query(TypedDict):
    text: str
    page: NotRequired[int]


@dataclasses.dataclass
class Positive:
    value: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError("value must be positive")


@dataclasses.dataclass
class Node:
    children: "list[Node]"


class Plain:
    pass


def search(
    query: str,
    limit: int = 10,
    tags: list[str] | None = None,
    color: Color = Color.RED,
    ctx: object = None,
) -> list[str]:
    """Search the catalogue
    for matching items.

    Results are ranked by relevance.

    Args:
        query: words to look for,
            in any order.
        limit (int): at most this many results.
        tags: only items with all these tags.
        ctx: injected by the runtime.

    Returns:
        Matching item ids.
    """
    return []


def one_arg(tp: Any) -> Callable[..., Any]:
    """A function taking one required argument `x` annotated with `tp`."""

    def fn(x: Any) -> None:
        pass

    fn.__annotations__ = {"x": tp, "return": None}
    return fn


def check(tp: Any, value: object) -> Any:
    """Validate `{"x": value}` against a function taking `x: tp`; return x."""
    return validate_arguments(ArgSpec.from_function(one_arg(tp)), {"x": value})["x"]


def error_of(tp: Any, value: object) -> str:
    with pytest.raises(ArgumentError) as info:
        check(tp, value)
    return str(info.value)


def test_schema_of_a_representative_function() -> None:
    assert signature_schema(search, skip={"ctx"}) == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "words to look for, in any order."},
            "limit": {
                "type": "integer",
                "description": "at most this many results.",
                "default": 10,
            },
            "tags": {
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                "description": "only items with all these tags.",
                "default": None,
            },
            "color": {"enum": ["red", "green"], "type": "string", "default": "red"},
        },
        "required": ["query"],
        "additionalProperties": False,
    }


def test_arg_spec_matches_signature_schema() -> None:
    spec = ArgSpec.from_function(search, skip=("ctx",))
    assert spec.schema == signature_schema(search, skip=("ctx",))
    assert spec.names == ("query", "limit", "tags", "color")


def test_description_is_the_first_paragraph_normalised() -> None:
    assert description_of(search) == "Search the catalogue for matching items."
    assert (
        description_of(one_arg)
        == "A function taking one required argument `x` annotated with `tp`."
    )

    def undocumented(x: int) -> None:
        pass

    assert description_of(undocumented) == ""


@pytest.mark.parametrize(
    ("tp", "schema"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (type(None), {"type": "null"}),
        (UserId, {"type": "integer"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (tuple[str, ...], {"type": "array", "items": {"type": "string"}}),
        (Sequence[bool], {"type": "array", "items": {"type": "boolean"}}),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (frozenset[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
        (list, {"type": "array", "items": {}}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (Mapping[str, Any], {"type": "object", "additionalProperties": {}}),
        (Literal["a", "b"], {"enum": ["a", "b"], "type": "string"}),
        (Literal[1, 2], {"enum": [1, 2], "type": "integer"}),
        (Literal["a", 1, True], {"enum": ["a", 1, True]}),
        (Color, {"enum": ["red", "green"], "type": "string"}),
        (Level, {"enum": [1, 2], "type": "integer"}),
        (OPTIONAL_INT, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (str | int, {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
        (
            UNION_INT_LIST,
            {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]},
        ),
        (Annotated[str, "a name", 42], {"type": "string", "description": "a name"}),
        (Annotated[int, 42], {"type": "integer"}),
        (
            list[Annotated[str, "a tag"]],
            {"type": "array", "items": {"type": "string", "description": "a tag"}},
        ),
        (Any, {}),
        (object, {}),
    ],
)
def test_schema_of_each_supported_annotation(tp: Any, schema: dict[str, Any]) -> None:
    assert signature_schema(one_arg(tp))["properties"]["x"] == schema


def test_schema_of_nested_classes() -> None:
    point = {
        "type": "object",
        "properties": {
            "x": {"type": "number", "description": "horizontal position."},
            "y": {"type": "number", "description": "vertical position.", "default": 0.0},
        },
        "required": ["x"],
        "additionalProperties": False,
    }
    assert signature_schema(one_arg(Box))["properties"]["x"] == {
        "type": "object",
        "properties": {
            "corner": point,
            "size": {"type": "integer", "description": "side length", "default": 1},
            "label": {"type": "string", "default": "box"},
        },
        "required": ["corner"],
        "additionalProperties": False,
    }
    assert signature_schema(one_arg(Filters))["properties"]["x"] == {
        "type": "object",
        "properties": {
            "kinds": {"type": "array", "items": {"enum": ["doc", "image"], "type": "string"}},
            "near": point,
            "owner": {"type": "string"},
        },
        "required": [],
        "additionalProperties": False,
    }
    query = signature_schema(one_arg(Query))["properties"]["x"]
    assert query["properties"] == {"text": {"type": "string"}, "page": {"type": "integer"}}
    assert query["required"] == ["text"]


def test_annotated_description_wins_over_the_docstring() -> None:
    def fn(a: Annotated[int, "from Annotated"], b: int) -> None:
        """Do it.

        Args:
            a: from the docstring.
            b: also from
                the docstring.
        """

    properties = signature_schema(fn)["properties"]
    assert properties["a"]["description"] == "from Annotated"
    assert properties["b"]["description"] == "also from the docstring."


def test_defaults_appear_only_when_json_compatible() -> None:
    sentinel = object()

    def fn(
        a: tuple[int, ...] = (1, 2),
        b: Level = Level.HIGH,
        c: float = math.inf,
        d: Any = sentinel,
        e: dict[str, Any] | None = None,
    ) -> None:
        pass

    properties = signature_schema(fn)["properties"]
    assert properties["a"]["default"] == [1, 2]
    assert properties["b"]["default"] == 2
    assert "default" not in properties["c"]
    assert "default" not in properties["d"]
    assert properties["e"]["default"] is None
    assert signature_schema(fn)["required"] == []


def test_skipped_parameters_need_no_annotation_and_are_not_accepted() -> None:
    def fn(ctx, query: str) -> None:  # type: ignore[no-untyped-def]
        pass

    spec = ArgSpec.from_function(fn, skip={"ctx"})
    assert spec.names == ("query",)
    assert list(spec.schema["properties"]) == ["query"]
    with pytest.raises(ArgumentError, match="unexpected argument 'ctx'"):
        validate_arguments(spec, {"query": "q", "ctx": 1})


@pytest.mark.parametrize(
    ("tp", "value", "expected"),
    [
        (str, "hi", "hi"),
        (int, 5, 5),
        (int, 3.0, 3),
        (int, -0.0, 0),
        (float, 2, 2.0),
        (float, 2.5, 2.5),
        (bool, False, False),
        (None, None, None),
        (UserId, 7, 7),
        (list[int], [1, 2.0], [1, 2]),
        (tuple[int, ...], [1, 2], (1, 2)),
        (Sequence[str], ["a"], ["a"]),
        (set[str], ["a", "b"], {"a", "b"}),
        (frozenset[int], [2, 1], frozenset({1, 2})),
        (dict[str, float], {"a": 1}, {"a": 1.0}),
        (Mapping[str, list[int]], {"a": [1]}, {"a": [1]}),
        (Literal["a", "b"], "b", "b"),
        (Literal[1, True], True, True),
        (Literal[1, True], 1, 1),
        (Color, "green", Color.GREEN),
        (Level, 2, Level.HIGH),
        (OPTIONAL_INT, None, None),
        (int | None, 4, 4),
        (int | float, 3.0, 3),
        (float | int, 3, 3.0),
        (str | list[str], ["a"], ["a"]),
        (Annotated[int, "n"], 1, 1),
        (Any, {"a": [1, None]}, {"a": [1, None]}),
        (Point, {"x": 1}, Point(1.0, 0.0)),
        (Box, {"corner": {"x": 1, "y": 2}, "label": "L"}, Box(Point(1.0, 2.0), 1, "L")),
        (Filters, {"near": {"x": 0.5}}, {"near": Point(0.5)}),
        (Query, {"text": "t", "page": 2}, {"text": "t", "page": 2}),
        (list[Point | None], [None, {"x": 1}], [None, Point(1.0)]),
    ],
)
def test_valid_values_are_converted_to_the_annotated_type(
    tp: Any, value: object, expected: object
) -> None:
    result = check(tp, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("tp", "value", "message"),
    [
        (int, True, "argument 'x': expected integer, got boolean true"),
        (int, 3.5, "argument 'x': expected integer, got number 3.5"),
        (int, "5", "argument 'x': expected integer, got string '5'"),
        (float, math.nan, "argument 'x': expected a finite number, got number nan"),
        (float, -math.inf, "argument 'x': expected a finite number, got number -inf"),
        (float, 10**400, "argument 'x': expected a finite number, got integer (too large to show)"),
        (float, False, "argument 'x': expected number, got boolean false"),
        (bool, 1, "argument 'x': expected boolean, got integer 1"),
        (str, None, "argument 'x': expected string, got null"),
        (int, "y" * 100, "argument 'x': expected integer, got string '" + "y" * 36 + "..."),
        (None, 0, "argument 'x': expected null, got integer 0"),
        (list[str], ["a", "b", None], "argument 'x[2]': expected string, got null"),
        (list[int], "abc", "argument 'x': expected array, got string 'abc'"),
        (list[int], {"a": 1}, "argument 'x': expected array, got object"),
        (set[int], [1, 1.0], "argument 'x[1]': duplicate of an earlier item"),
        (set[Any], [[1]], "argument 'x[0]': cannot be an item of a set (unhashable)"),
        (dict[str, int], {"a": "1"}, "argument 'x[\"a\"]': expected integer, got string '1'"),
        (dict[str, int], [], "argument 'x': expected object, got array"),
        (Literal["a", "b"], "c", "argument 'x': expected one of 'a', 'b', got string 'c'"),
        (Literal[1], True, "argument 'x': expected one of 1, got boolean true"),
        (Color, "blue", "argument 'x': expected one of 'red', 'green', got string 'blue'"),
        (Color, "RED", "argument 'x': expected one of 'red', 'green', got string 'RED'"),
        (Level, 1.0, "argument 'x': expected one of 1, 2, got number 1.0"),
        (int | None, "5", "argument 'x': expected integer or null, got string '5'"),
        (Point | None, {"x": "a"}, "argument 'x.x': expected number, got string 'a'"),
        (Point | None, {"x": 1, "z": 2}, "argument 'x': unexpected field 'z' (allowed: 'x', 'y')"),
        (Point, {}, "argument 'x': missing required field 'x'"),
        (Point, [1, 2], "argument 'x': expected object, got array"),
        (Query, {"page": 1}, "argument 'x': missing required field 'text'"),
        (
            Box,
            {"corner": {"x": 1}, "_label": "L"},
            "unexpected field '_label' (allowed: 'corner', 'size', 'label')",
        ),
        (Positive, {"value": 0}, "argument 'x': invalid Positive: value must be positive"),
        (list[list[int]], [[1], [2, "3"]], "argument 'x[1][1]': expected integer, got string '3'"),
    ],
)
def test_invalid_values_are_named_by_path(tp: Any, value: object, message: str) -> None:
    assert message in error_of(tp, value)


def test_union_error_lists_each_alternative_that_came_close() -> None:
    message = error_of(Point | Positive, {"x": 1, "value": 1})
    assert message.startswith("argument 'x': matches no alternative (as object, ")
    assert error_of(Point | Positive, {}).startswith("argument 'x': matches no alternative")
    assert "unexpected field 'value' (allowed: 'x', 'y')" in message
    assert "unexpected field 'x' (allowed: 'value')" in message
    assert (
        error_of(Point | Positive, {"value": -1})
        == "argument 'x': invalid Positive: value must be positive"
    )


def test_union_takes_the_first_alternative_that_validates() -> None:
    assert check(UNION_COLOR_STR, "red") is Color.RED
    assert check(UNION_STR_COLOR, "red") == "red"


def test_missing_and_unexpected_arguments_are_all_reported() -> None:
    spec = ArgSpec.from_function(search, skip={"ctx"})
    with pytest.raises(ArgumentError) as info:
        validate_arguments(spec, {"limit": "5", "foo": 1, "tags": ["a", None]})
    assert str(info.value) == (
        "argument 'limit': expected integer, got string '5'; "
        "unexpected argument 'foo' (allowed: 'query', 'limit', 'tags', 'color'); "
        "argument 'tags[1]': expected string, got null; "
        "missing required argument 'query'"
    )
    assert len(info.value.problems) == 4


def test_optional_arguments_left_out_stay_out() -> None:
    spec = ArgSpec.from_function(search, skip={"ctx"})
    kwargs = validate_arguments(spec, {"query": "lamp", "color": "green"})
    assert kwargs == {"query": "lamp", "color": Color.GREEN}
    assert search(**kwargs) == []


def test_arguments_must_be_an_object() -> None:
    spec = ArgSpec.from_function(search, skip={"ctx"})
    with pytest.raises(ArgumentError, match=r"^arguments must be a JSON object, got array$"):
        validate_arguments(spec, ["lamp"])
    with pytest.raises(
        ArgumentError, match=r"^arguments must be a JSON object, got string 'lamp'$"
    ):
        validate_arguments(spec, "lamp")


def test_problems_are_capped_in_the_message_but_all_kept() -> None:
    with pytest.raises(ArgumentError) as info:
        check(list[int], ["a"] * (MAX_PROBLEMS + 5))
    assert len(info.value.problems) == MAX_PROBLEMS + 5
    message = str(info.value)
    assert message.count("expected integer") == MAX_PROBLEMS
    assert message.endswith("; and 5 more problems")


def test_errors_are_value_and_type_errors() -> None:
    assert issubclass(ArgumentError, ValueError)
    assert issubclass(SchemaError, TypeError)


def test_skipped_parameters_are_not_resolved() -> None:
    def fn(ctx: "OnlyImportedWhenTypeChecking", query: str) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    assert signature_schema(fn, skip={"ctx"})["required"] == ["query"]
    with pytest.raises(SchemaError, match=r"cannot read the signature of .*fn: name 'Only"):
        signature_schema(fn)


def test_methods_and_callable_instances_are_read_without_self() -> None:
    class Catalogue:
        def lookup(self, item_id: UserId) -> None:
            pass

        def __call__(self, query: str, limit: int = 1) -> None:
            pass

    assert ArgSpec.from_function(Catalogue().lookup).names == ("item_id",)
    assert signature_schema(Catalogue())["required"] == ["query"]


def test_var_args_are_rejected() -> None:
    def fn(*items: int) -> None:
        pass

    with pytest.raises(SchemaError, match=r"parameter 'items' .*\*args and \*\*kwargs"):
        signature_schema(fn)


def test_var_kwargs_are_rejected() -> None:
    def fn(query: str, **extra: int) -> None:
        pass

    with pytest.raises(SchemaError, match=r"parameter 'extra'"):
        signature_schema(fn)


def test_positional_only_parameters_are_rejected() -> None:
    def fn(query: str, /) -> None:
        pass

    with pytest.raises(SchemaError, match=r"parameter 'query' .*positional-only"):
        signature_schema(fn)


def test_missing_annotation_is_rejected() -> None:
    def fn(query: str, limit=3) -> None:  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(SchemaError, match=r"parameter 'limit' .*has no type annotation"):
        signature_schema(fn)


@pytest.mark.parametrize(
    ("tp", "message"),
    [
        (Plain, "parameter 'x' .*unsupported type .*Plain"),
        (Callable[[int], int], "parameter 'x' .*unsupported type annotation"),
        (list[Plain], "parameter 'x' .*Plain"),
        (dict[int, str], "parameter 'x' .*mapping keys must be str"),
        (tuple[int, str], "parameter 'x' .*fixed-length tuples"),
        (Literal[1.5], "parameter 'x' .*Literal values"),
        (Node, "parameter 'x' .*recursive type Node"),
        (bytes, "parameter 'x' .*unsupported type builtins.bytes"),
    ],
)
def test_unsupported_annotations_are_rejected(tp: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        signature_schema(one_arg(tp))


def test_unsupported_field_names_the_parameter_and_the_field() -> None:
    @dataclasses.dataclass
    class Holder:
        thing: Plain

    with pytest.raises(
        SchemaError, match=r"parameter 'x' .*field .*Holder\.thing: unsupported type"
    ):
        signature_schema(one_arg(list[Holder]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_any_returns_json_unchanged(value: object) -> None:
    assert check(Any, value) is value


@given(json_values)
def test_list_of_int_returns_ints_or_raises_argument_error(value: object) -> None:
    try:
        result = check(list[int], value)
    except ArgumentError:
        return
    assert isinstance(result, list)
    assert all(type(item) is int for item in result)


@given(json_values)
def test_nested_annotation_never_raises_anything_else(value: object) -> None:
    tp = dict[str, list[int | None]] | Box | set[Color] | float
    try:
        check(tp, value)
    except ArgumentError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith("argument 'x")


points = st.builds(
    Point,
    x=st.floats(allow_nan=False, allow_infinity=False),
    y=st.floats(allow_nan=False, allow_infinity=False),
)


@given(st.builds(Box, corner=points, size=st.integers(), label=st.text()))
def test_instances_round_trip_through_their_json(box: Box) -> None:
    as_json = {
        "corner": dataclasses.asdict(box.corner),
        "size": box.size,
        "label": box._label,
    }
    assert check(Box, as_json) == box
