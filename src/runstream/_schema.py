"""JSON Schema and strict validation for the arguments of tool functions.

`ArgSpec.from_function` reads a typed function once and precomputes one
validator per annotation; `validate_arguments` then checks the decoded JSON a
model sent and returns the keyword arguments to call the function with. Every
problem is reported by its path (``argument 'tags[2]': expected string, got
null``) because a model reads the message to correct its call.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Callable, Container, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, NotRequired, Required, TypeAlias, Union

import attrs

from .codec import EncodeError, jsonable

__all__ = [
    "MAX_PROBLEMS",
    "ArgSpec",
    "ArgumentError",
    "SchemaError",
    "description_of",
    "signature_schema",
    "validate_arguments",
]

MAX_PROBLEMS: Final = 10
"""How many problems an `ArgumentError` message spells out."""

_Problems: TypeAlias = list[tuple[str, str]]  # (path, message); path "" = the call itself
_Validator: TypeAlias = Callable[[object, str, _Problems], Any]
_Compiled: TypeAlias = tuple[dict[str, Any], _Validator]
_Field: TypeAlias = tuple[str, dict[str, Any], _Validator, bool]  # name, schema, check, required
_MISSING: Final[Any] = object()
_JSON_TYPES: Final = (
    (types.NoneType, "null"),
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (Mapping, "object"),
    (list | tuple, "array"),
)
_SHAPE_ERRORS: Final = ("expected ", "unexpected ", "missing required ")
_DOC_SECTIONS: Final = ("Args:", "Arguments:", "Parameters:", "Attributes:")
_DOC_ENTRY: Final = re.compile(r"\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(.*)")


class SchemaError(TypeError):
    """A function's signature cannot be described as a tool's JSON arguments."""


class ArgumentError(ValueError):
    """The arguments a model sent do not fit the function.

    Attributes:
        problems: every problem found, one readable sentence each; the message
            joins the first `MAX_PROBLEMS` of them with "; ".
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        text = "; ".join(self.problems[:MAX_PROBLEMS])
        if len(self.problems) > MAX_PROBLEMS:
            text += f"; and {len(self.problems) - MAX_PROBLEMS} more problems"
        super().__init__(text)


@attrs.frozen(eq=False)
class ArgSpec:
    """The JSON arguments a function takes: its schema and a precompiled validator.

    Attributes:
        schema: JSON Schema object describing the arguments.
        names: the argument names, in signature order.
    """

    schema: dict[str, Any]
    names: tuple[str, ...]
    _check: _Validator = attrs.field(repr=False)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, skip: Container[str] = ()) -> ArgSpec:
        """Read `fn`'s signature, annotations and docstring once.

        Args:
            fn: the tool function.
            skip: parameters injected by the caller (a context object, say),
                left out of the schema and of validation.

        Raises:
            SchemaError: a parameter is unannotated, has an unsupported type,
                or is positional-only, ``*args`` or ``**kwargs``.
        """
        label = getattr(fn, "__qualname__", repr(fn))
        try:
            signature = inspect.signature(fn)
            hints = _hints(fn, skip)
        except Exception as exc:
            raise SchemaError(f"cannot read the signature of {label}: {exc}") from exc
        docs = _arg_docs(fn)
        fields: list[_Field] = []
        for param in signature.parameters.values():
            if param.name in skip:
                continue
            where = f"parameter {param.name!r} of {label}"
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise SchemaError(f"{where}: *args and **kwargs cannot be tool arguments")
            if param.kind is param.POSITIONAL_ONLY:
                raise SchemaError(f"{where}: positional-only parameters cannot be tool arguments")
            if param.name not in hints:
                raise SchemaError(f"{where} has no type annotation")
            default = _MISSING if param.default is param.empty else param.default
            doc = docs.get(param.name)
            fields.append(
                _field(param.name, hints[param.name], where, default is _MISSING, default, doc)
            )
        schema, check = _object(fields, "argument", dict)
        return cls(schema, tuple(name for name, *_ in fields), check)


def _hints(fn: Callable[..., Any], skip: Container[str]) -> dict[str, Any]:
    """Resolved annotations of `fn`, except skipped ones.

    Skipped parameters (a context object) are often annotated with a name
    imported only under `TYPE_CHECKING`; resolving them would fail for nothing.
    """
    target = inspect.unwrap(fn)
    if not inspect.isroutine(target):  # an instance with __call__
        target = target.__call__
    annotations = getattr(target, "__annotations__", None) or {}
    wanted = {name: tp for name, tp in annotations.items() if name not in skip}
    namespace = getattr(target, "__globals__", None)
    shim = types.SimpleNamespace(__annotations__=wanted)
    return typing.get_type_hints(shim, globalns=namespace, include_extras=True)


def signature_schema(fn: Callable[..., Any], *, skip: Container[str] = ()) -> dict[str, Any]:
    """JSON Schema object for `fn`'s parameters, except those named in `skip`.

    Example:
        >>> def search(query: str, limit: int = 5) -> list[str]: ...
        >>> signature_schema(search)["required"]
        ['query']
    """
    return ArgSpec.from_function(fn, skip=skip).schema


def validate_arguments(fn_schema: ArgSpec, args: object) -> dict[str, Any]:
    """Check decoded JSON `args` strictly; return the keyword arguments to call with.

    Optional arguments that are absent stay absent, so Python fills in defaults.

    Raises:
        ArgumentError: naming every problem by path.
    """
    if not isinstance(args, Mapping):
        raise ArgumentError([f"arguments must be a JSON object, got {_describe(args)}"])
    problems: _Problems = []
    result: dict[str, Any] = fn_schema._check(args, "", problems)
    if problems:
        raise ArgumentError(
            [f"argument '{path}': {msg}" if path else msg for path, msg in problems]
        )
    return result


def description_of(fn: object) -> str:
    """The first paragraph of `fn`'s docstring, whitespace-normalised ("" if none)."""
    doc = inspect.getdoc(fn) or ""
    return " ".join(re.split(r"\n\s*\n", doc, maxsplit=1)[0].split())


def _arg_docs(obj: object) -> dict[str, str]:
    """Descriptions from a Google-style "Args:" (or "Attributes:") docstring section."""
    lines = (inspect.getdoc(obj) or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() in _DOC_SECTIONS), None)
    if start is None:
        return {}
    base = len(lines[start]) - len(lines[start].lstrip())
    docs: dict[str, list[str]] = {}
    entry_indent, name = None, None
    for line in lines[start + 1 :]:
        indent = len(line) - len(line.lstrip())
        if line.strip() and indent <= base:
            break
        entry_indent = indent if entry_indent is None and line.strip() else entry_indent
        match = _DOC_ENTRY.fullmatch(line.strip()) if indent == entry_indent else None
        if match:
            name = match[1]
            docs[name] = [match[2]]
        elif name:
            docs[name].append(line)
    return {key: " ".join(" ".join(parts).split()) for key, parts in docs.items()}


def _field(
    name: str,
    tp: Any,
    where: str,
    required: bool,
    default: Any,
    doc: str | None,
    seen: frozenset[type] = frozenset(),
) -> _Field:
    schema, check = _compile(tp, where, seen)
    if doc and "description" not in schema:
        schema = {**schema, "description": doc}
    if (value := _jsonable(default)) is not _MISSING:
        schema = {**schema, "default": value}
    return name, schema, check, required


def _compile(tp: Any, where: str, seen: frozenset[type]) -> _Compiled:
    """Schema and validator for one annotation; `seen` guards against recursion."""
    origin, args = typing.get_origin(tp) or tp, typing.get_args(tp)
    if origin is Annotated:
        schema, check = _compile(args[0], where, seen)
        text = next((meta for meta in args[1:] if isinstance(meta, str)), None)
        return ({**schema, "description": text} if text else schema), check
    if tp is Any or tp is object:
        return {}, _any
    if tp is None or tp is types.NoneType:
        return {"type": "null"}, _exactly(types.NoneType, "null")
    if isinstance(tp, typing.NewType):
        return _compile(tp.__supertype__, where, seen)
    if isinstance(tp, type) and tp in _SCALARS:
        schema, check = _SCALARS[tp]
        return dict(schema), check
    if origin is Literal:
        return _literal(args, where)
    if origin is Union or origin is types.UnionType:
        return _union([_compile(arg, where, seen) for arg in args])
    if origin in (list, tuple, Sequence, set, frozenset):
        return _array(origin, args, where, seen)
    if origin in (dict, Mapping):
        return _mapping(args, where, seen)
    if isinstance(tp, type):
        return _class(tp, where, seen)
    raise SchemaError(f"{where}: unsupported type annotation {tp!r}")


def _class(tp: Any, where: str, seen: frozenset[type]) -> _Compiled:
    if issubclass(tp, enum.Enum):
        return _enum(tp, where)
    if tp in seen:
        raise SchemaError(f"{where}: recursive type {tp.__qualname__} is not supported")
    specs: list[tuple[str, str, bool, Any, Any]]  # attribute, JSON name, required, default, type
    is_typeddict = issubclass(tp, dict) and hasattr(tp, "__required_keys__")
    if is_typeddict:
        specs = [
            (key, key, key in tp.__required_keys__, _MISSING, None) for key in tp.__annotations__
        ]
    elif dataclasses.is_dataclass(tp):
        no_default = (dataclasses.MISSING, dataclasses.MISSING)
        specs = [
            (f.name, f.name, (f.default, f.default_factory) == no_default, f.default, f.type)
            for f in dataclasses.fields(tp)
            if f.init
        ]
    elif attrs.has(tp):
        specs = [
            (
                a.name,
                a.alias,
                a.default is attrs.NOTHING,
                _MISSING if a.default is attrs.NOTHING else a.default,
                a.type,
            )
            for a in attrs.fields(tp)
            if a.init
        ]
    else:
        raise SchemaError(f"{where}: unsupported type {tp.__module__}.{tp.__qualname__}")
    try:
        hints = typing.get_type_hints(tp, include_extras=True)
    except Exception as exc:
        raise SchemaError(
            f"{where}: cannot resolve the annotations of {tp.__qualname__}: {exc}"
        ) from exc
    docs, seen = _arg_docs(tp), seen | {tp}
    fields: list[_Field] = []
    for attr, name, required, default, fallback in specs:
        field_where = f"{where}, field {tp.__qualname__}.{attr}"
        if (hint := hints.get(attr, fallback)) is None:
            raise SchemaError(f"{field_where} has no type annotation")
        if typing.get_origin(hint) in (Required, NotRequired):
            hint = typing.get_args(hint)[0]
        fields.append(_field(name, hint, field_where, required, default, docs.get(attr), seen))
    return _object(fields, "field", dict if is_typeddict else tp)


def _object(fields: list[_Field], noun: str, build: Callable[..., Any]) -> _Compiled:
    checks = {name: check for name, _, check, _ in fields}
    required = [name for name, _, _, is_required in fields if is_required]
    allowed = ", ".join(repr(name) for name in checks) or "none"
    schema = {
        "type": "object",
        "properties": {name: field_schema for name, field_schema, _, _ in fields},
        "required": required,
        "additionalProperties": False,
    }

    def check(value: object, path: str, problems: _Problems) -> Any:
        if not isinstance(value, Mapping):
            return _fail(problems, path, _mismatch("object", value))
        before = len(problems)
        kwargs: dict[str, Any] = {}
        for key, item in value.items():
            if (check_field := checks.get(key)) is None:
                problems.append((path, f"unexpected {noun} {_show(key)} (allowed: {allowed})"))
            else:
                kwargs[key] = check_field(item, f"{path}.{key}" if path else key, problems)
        problems.extend(
            (path, f"missing required {noun} {name!r}") for name in required if name not in value
        )
        if len(problems) > before:
            return None
        try:
            return build(**kwargs)
        except (TypeError, ValueError) as exc:  # a constructor's own validation
            return _fail(problems, path, f"invalid {getattr(build, '__name__', 'object')}: {exc}")

    return schema, check


def _array(origin: Any, args: tuple[Any, ...], where: str, seen: frozenset[type]) -> _Compiled:
    if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
        raise SchemaError(f"{where}: fixed-length tuples are not supported, use tuple[T, ...]")
    item_schema, check_item = _compile(args[0] if args else Any, where, seen)
    unique = origin in (set, frozenset)
    build = origin if unique or origin is tuple else list
    schema = {"type": "array", "items": item_schema} | ({"uniqueItems": True} if unique else {})

    def check(value: object, path: str, problems: _Problems) -> Any:
        if not isinstance(value, list | tuple):
            return _fail(problems, path, _mismatch("array", value))
        before = len(problems)
        items = [check_item(item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
        if unique and len(problems) == before:
            _check_unique(items, path, problems)
        return build(items) if len(problems) == before else None

    return schema, check


def _check_unique(items: list[Any], path: str, problems: _Problems) -> None:
    earlier: set[object] = set()
    for i, item in enumerate(items):
        try:
            if item in earlier:
                problems.append(
                    (f"{path}[{i}]", "duplicate of an earlier item (items must be unique)")
                )
            earlier.add(item)
        except TypeError:
            problems.append((f"{path}[{i}]", "cannot be an item of a set (unhashable)"))


def _mapping(args: tuple[Any, ...], where: str, seen: frozenset[type]) -> _Compiled:
    if args and args[0] is not str:
        raise SchemaError(f"{where}: mapping keys must be str, not {args[0]!r}")
    value_schema, check_value = _compile(args[1] if args else Any, where, seen)

    def check(value: object, path: str, problems: _Problems) -> Any:
        if not isinstance(value, Mapping):
            return _fail(problems, path, _mismatch("object", value))
        before, out = len(problems), {}
        for key, item in value.items():
            if isinstance(key, str):
                out[key] = check_value(
                    item, f"{path}[{json.dumps(key, ensure_ascii=False)}]", problems
                )
            else:
                problems.append((path, f"key {_show(key)} is not a string"))
        return out if len(problems) == before else None

    return {"type": "object", "additionalProperties": value_schema}, check


def _literal(values: tuple[Any, ...], where: str) -> _Compiled:
    if not all(
        v is None or (isinstance(v, str | int) and not isinstance(v, enum.Enum)) for v in values
    ):
        raise SchemaError(f"{where}: Literal values must be str, int, bool or None, got {values!r}")
    schema = _enum_schema(list(values))
    expected = _label(schema)

    def check(value: object, path: str, problems: _Problems) -> Any:
        for allowed in values:
            if type(allowed) is type(value) and allowed == value:
                return allowed
        return _fail(problems, path, _mismatch(expected, value))

    return schema, check


def _enum(tp: type[enum.Enum], where: str) -> _Compiled:
    members = {member.value: member for member in tp}
    if not members or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in members
    ):
        raise SchemaError(f"{where}: enum {tp.__qualname__} must have str or int values")
    schema = _enum_schema(list(members))
    expected = _label(schema)

    def check(value: object, path: str, problems: _Problems) -> Any:
        if isinstance(value, str | int) and not isinstance(value, bool) and value in members:
            return members[value]
        return _fail(problems, path, _mismatch(expected, value))

    return schema, check


def _union(alternatives: list[_Compiled]) -> _Compiled:
    schema = {"anyOf": [alt_schema for alt_schema, _ in alternatives]}
    expected = _label(schema)

    def check(value: object, path: str, problems: _Problems) -> Any:
        failures: list[tuple[dict[str, Any], _Problems]] = []
        for alt_schema, check_alt in alternatives:
            own: _Problems = []
            result = check_alt(value, path, own)
            if not own:
                return result
            failures.append((alt_schema, own))
        # An alternative whose value had the right shape but failed deeper (or in
        # its constructor) is what the model meant: its own problems help most.
        near = [(s, own) for s, own in failures if not all(_is_shape_error(p, path) for p in own)]
        if not near:  # then one that had the right type but not the right keys
            near = [(s, own) for s, own in failures if not own[0][1].startswith("expected ")]
        if len(near) == 1:
            problems.extend(near[0][1])
            return None
        if not near:
            return _fail(problems, path, _mismatch(expected, value))
        briefs = [
            f"as {_label(s)}, " + (m if p == path else f"'{p}': {m}") for s, ((p, m), *_) in near
        ]
        return _fail(problems, path, f"matches no alternative ({' | '.join(briefs)})")

    return schema, check


def _is_shape_error(problem: tuple[str, str], path: str) -> bool:
    """Whether a problem says the value at `path` has the wrong type or keys."""
    return problem[0] == path and problem[1].startswith(_SHAPE_ERRORS)


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    kinds = {_json_type(v) for v in values}
    return {"enum": values} | ({"type": kinds.pop()} if len(kinds) == 1 else {})


def _label(schema: dict[str, Any]) -> str:
    """How an expected type reads in an error message."""
    if "enum" in schema:
        shown = ", ".join(_show(v) for v in schema["enum"][:10])
        return f"one of {shown}" + (", ..." if len(schema["enum"]) > 10 else "")
    if "anyOf" in schema:
        return " or ".join(_label(alt) for alt in schema["anyOf"])
    return str(schema.get("type", "any JSON value"))


def _json_type(value: object) -> str:
    return next((name for cls, name in _JSON_TYPES if isinstance(value, cls)), "")


def _show(value: object) -> str:
    """A short JSON-ish rendering of a value, for error messages."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int) and value.bit_length() > 128:
        return "(too large to show)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(value: object) -> str:
    kind = _json_type(value)
    if kind in ("null", "object", "array"):
        return kind
    return f"{kind or type(value).__name__} {_show(value)}"


def _mismatch(expected: str, value: object) -> str:
    return f"expected {expected}, got {_describe(value)}"


def _jsonable(value: object) -> object:
    """`value` as JSON (see `codec.jsonable`), or `_MISSING` if it has none."""
    try:
        return jsonable(value, "default")
    except EncodeError:
        return _MISSING


def _fail(problems: _Problems, path: str, message: str) -> Any:
    problems.append((path, message))
    return None


def _any(value: object, path: str, problems: _Problems) -> Any:
    return value


def _exactly(cls: type, kind: str) -> _Validator:
    def check(value: object, path: str, problems: _Problems) -> Any:
        return value if isinstance(value, cls) else _fail(problems, path, _mismatch(kind, value))

    return check


def _int(value: object, path: str, problems: _Problems) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _fail(problems, path, _mismatch("integer", value))


def _float(value: object, path: str, problems: _Problems) -> Any:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _fail(problems, path, _mismatch("number", value))
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if math.isfinite(number):
        return number
    return _fail(problems, path, f"expected a finite number, got {_describe(value)}")


_SCALARS: Final[dict[type, _Compiled]] = {
    str: ({"type": "string"}, _exactly(str, "string")),
    int: ({"type": "integer"}, _int),
    float: ({"type": "number"}, _float),
    bool: ({"type": "boolean"}, _exactly(bool, "boolean")),
}
