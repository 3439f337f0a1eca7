"""The JSON wire format of events.

An event travels as one flat JSON object tagged with its `type`:

```json
{"type": "tool_end", "run_id": "r1", "agent": "researcher", "parent_run_id": null,
 "thread_id": null, "node": "search", "seq": 7, "ts": 1767225600.5,
 "tool_call_id": "call_1", "tool_name": "search", "result": ["..."], "error": null,
 "duration": 0.25}
```

`loads(dumps(e)) == e` for every event whose JSON fields hold JSON values
(lists and string-keyed dicts; the runtime normalises payloads when a run emits
them). Decoding raises only [`DecodeError`][runstream.codec.DecodeError];
encoding a value that is not JSON raises
[`EncodeError`][runstream.codec.EncodeError] naming the field.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from .events import EVENT_TYPES, JSON, ErrorInfo, Event, Phase, ToolCall

__all__ = [
    "DecodeError",
    "EncodeError",
    "dumps",
    "from_dict",
    "is_json_type",
    "jsonable",
    "loads",
    "loose_json",
    "to_dict",
]


class DecodeError(ValueError):
    """The input is not a valid encoded event; the message says what is wrong."""


class EncodeError(ValueError):
    """A value in an event is not JSON-compatible; the message names the field."""


_BY_TYPE: dict[str, type[Event]] = {cls.type: cls for cls in EVENT_TYPES}
_KNOWN = ", ".join(sorted(_BY_TYPE))
_IDENTITY = ("run_id", "agent", "parent_run_id", "thread_id")
_BASE_REQUIRED = ("run_id", "agent", "seq", "ts")


# --- encoding -------------------------------------------------------------------


class _NotJSON(Exception):
    def __init__(self, path: list[str], problem: str) -> None:
        self.path = path
        self.problem = problem


def _walk(value: object) -> JSON:
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value  # type: ignore[return-value]
    if t is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return value  # type: ignore[return-value]
        raise _NotJSON([], f"{value!r} is not a finite number")
    if t is dict or isinstance(value, Mapping):
        out: dict[str, JSON] = {}
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                if not isinstance(k, str):
                    raise _NotJSON([], f"dict key {k!r} is not a string")
                k = str.__str__(k)
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:  # flat dicts: no recursion
                out[k] = v
                continue
            try:
                out[k] = _walk(v)
            except _NotJSON as e:
                e.path.append(f".{k}")
                raise
        return out
    if t is list or t is tuple or isinstance(value, list | tuple):
        items: list[JSON] = []
        for i, v in enumerate(value):  # type: ignore[arg-type]
            try:
                items.append(_walk(v))
            except _NotJSON as e:
                e.path.append(f"[{i}]")
                raise
        return items
    if isinstance(value, enum.Enum) and type(value.value) in (str, int):
        return value.value  # type: ignore[no-any-return]
    if isinstance(value, bool | int | str):
        return _walk(t.__mro__[1](value) if not isinstance(value, bool) else bool(value))
    if isinstance(value, float):
        return _walk(float(value))
    if attrs.has(t):
        return _walk(_converter.unstructure(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _walk(dataclasses.asdict(value))
    raise _NotJSON([], f"{t.__name__} is not JSON-compatible")


def jsonable(value: object, field: str = "value") -> JSON:
    """Return `value` as plain JSON data: a fresh copy of lists, dicts and scalars.

    Tuples become lists, enums their values, attrs instances and dataclasses
    dicts of their fields.

    Raises:
        EncodeError: naming the offending path, e.g. `field 'payload.items[2]'`,
            for anything else, a non-string dict key, or a NaN or infinite float.
    """
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value  # type: ignore[return-value]
    try:
        return _walk(value)
    except _NotJSON as e:
        where = field + "".join(reversed(e.path))
        raise EncodeError(f"field '{where}': {e.problem}") from None
    except RecursionError:
        raise EncodeError(f"field '{field}': nested too deeply") from None


def loose_json(value: object, fallback: Callable[[object], str] = repr) -> JSON:
    """`value` as JSON where it can be; what cannot becomes `fallback(value)`.

    A mapping is converted key by key, so one odd value does not hide the rest:
    `{"n": 1, "when": datetime(...)}` gives `{"n": 1, "when": "datetime(...)"}`.
    Never raises `EncodeError`; used for state deltas and results that may
    hold anything.
    """
    if isinstance(value, Mapping):
        out: dict[str, JSON] = {}
        for key, item in value.items():
            try:
                out[str(key)] = jsonable(item, str(key))
            except EncodeError:
                out[str(key)] = fallback(item)
        return out
    try:
        return jsonable(value)
    except EncodeError:
        return fallback(value)


def _json_fields(cls: type[Any]) -> tuple[str, ...]:
    hints = attrs.resolve_types(cls)
    return tuple(
        a.name for a in attrs.fields(hints) if is_json_type(a.type) or _is_json_map(a.type)
    )


_JSON_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def to_dict(event: Event) -> dict[str, Any]:
    """The wire form of `event`: one flat dict with a `type` tag.

    Raises:
        EncodeError: a JSON field (payload, result, data, updates) holds a value
            that is not JSON; the message names the field.
    """
    cls = type(event)
    fn = _UNSTRUCTURE.get(cls)
    if fn is None:
        raise EncodeError(f"{cls.__name__} is not a runstream event")
    return fn(event)


def _plain(value: Any, name: str) -> Any:
    t = type(value)
    if t is float and not math.isfinite(value):
        raise EncodeError(f"field '{name}': {value!r} is not a finite number")
    if name == "calls" and (t is tuple or t is list):
        return [_tool_call(call, f"calls[{i}]") for i, call in enumerate(value)]
    if name == "tool_call" and value is not None:
        return _tool_call(value, name)
    return _converter.unstructure(value)


def _tool_call(call: Any, where: str) -> dict[str, Any]:
    if not isinstance(call, ToolCall):
        raise EncodeError(f"field '{where}': expected a ToolCall, got {type(call).__name__}")
    return {
        "tool_call_id": call.tool_call_id,
        "tool_name": call.tool_name,
        "payload": jsonable(call.payload, f"{where}.payload"),
    }


def _make_unstructure(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    own = [a.name for a in attrs.fields(cls) if a.name != "run"]
    json_fields = frozenset(_json_fields(cls))
    plain = [n for n in own if n not in json_fields]
    tag = cls.type

    def fn(event: Any) -> dict[str, Any]:
        run = event.run
        out: dict[str, Any] = {
            "type": tag,
            "run_id": run.run_id,
            "agent": run.agent,
            "parent_run_id": run.parent_run_id,
            "thread_id": run.thread_id,
        }
        for name in plain:
            out[name] = _plain(getattr(event, name), name)
        for name in json_fields:
            out[name] = jsonable(getattr(event, name), name)
        return out

    return fn


def dumps(event: Event) -> bytes:
    """Encode `event` as compact UTF-8 JSON, on one line.

    Text that UTF-8 cannot carry (a lone surrogate) is written as a JSON
    `\\u` escape, so that it still decodes to the same string. So are the
    characters that some line splitters take for a line break although JSON
    does not (U+2028, U+2029, U+0085: Python's `str.splitlines`, JavaScript
    before ES2019): one event is always one line of every splitter.

    Raises:
        EncodeError: as [`to_dict`][runstream.codec.to_dict].
    """
    obj = to_dict(event)
    text = json.dumps(obj, ensure_ascii=False, separators=_COMPACT, allow_nan=False)
    if not text.isascii():  # O(1) in CPython: the common case pays nothing more
        if "\u2028" in text or "\u2029" in text or "\x85" in text:
            text = text.translate(_LINE_BREAKS)
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate
            return json.dumps(obj, ensure_ascii=True, separators=_COMPACT).encode()
    return text.encode()


_LINE_BREAKS = {0x2028: "\\u2028", 0x2029: "\\u2029", 0x85: "\\u0085"}
_COMPACT = (",", ":")


# --- decoding -------------------------------------------------------------------


def _strict(expected: type[Any], name: str) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _: Any) -> Any:
        if type(value) is expected:
            return value
        raise TypeError(f"expected {name}, got {_describe(value)}")

    return hook


def _number(value: Any, _: Any) -> float:
    t = type(value)
    if t is float or t is int:
        f = float(value)
        if math.isfinite(f):
            return f
        raise ValueError(f"expected a finite number, got {value!r}")
    raise TypeError(f"expected number, got {_describe(value)}")


def _integer(value: Any, _: Any) -> int:
    if type(value) is int:
        return value
    raise TypeError(f"expected integer, got {_describe(value)}")


def _describe(value: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    names.update({list: "array", dict: "object", type(None): "null"})
    name = names.get(type(value), type(value).__name__)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = repr(value)
        return f"{name} {text[:40]}"
    return name


_JSON_SCALARS = frozenset(typing.get_args(JSON)) & {bool, int, float, str, type(None)}


def is_json_type(t: Any) -> bool:
    """Whether the annotation `t` is the `JSON` alias (as a field's resolved type).

    Resolved annotations hold ForwardRef('JSON') where the alias holds 'JSON',
    so this compares by shape rather than by equality.
    """
    args = typing.get_args(t)
    return len(args) == 7 and _JSON_SCALARS.issubset(args)


def _is_json_map(t: Any) -> bool:
    args = typing.get_args(t)
    return typing.get_origin(t) is Mapping and len(args) == 2 and is_json_type(args[1])


def _enum_member(value: Any, cls: type[Phase]) -> Phase:
    try:
        return cls(value)
    except ValueError:
        values = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"expected one of {values}, got {_describe(value)}") from None


def _tool_calls(value: Any, _: Any) -> tuple[ToolCall, ...]:
    """Decode `calls`, stopping at the first bad element (linear in the input's size)."""
    if type(value) is not list:
        raise TypeError(f"expected array, got {_describe(value)}")
    calls = []
    for i, item in enumerate(value):
        try:
            calls.append(_call(item, ToolCall))
        except (ClassValidationError, ForbiddenExtraKeysError) as exc:
            raise _Explained(_explain(exc, f"$.calls[{i}]")) from None
        except (TypeError, ValueError) as exc:
            raise _Explained(f"field 'calls[{i}]': {exc}") from None
    return tuple(calls)


class _Explained(ValueError):
    """A problem whose message already names its fields (see `_explain`)."""


def _any_json(value: Any, _: Any) -> Any:
    return value


def _string_map(value: Any, _: Any) -> dict[str, Any]:
    if type(value) is dict:
        return value
    raise TypeError(f"expected object, got {_describe(value)}")


_converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
_converter.register_structure_hook(str, _strict(str, "string"))
_converter.register_structure_hook(bool, _strict(bool, "boolean"))
_converter.register_structure_hook(int, _integer)
_converter.register_structure_hook(float, _number)
_converter.register_structure_hook(Phase, _enum_member)
_converter.register_structure_hook_func(is_json_type, _any_json)
_converter.register_structure_hook_func(_is_json_map, _string_map)


def _object_of(cls: type[Any]) -> Callable[[Any, Any], Any]:
    default = _converter.get_structure_hook(cls)

    def hook(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise TypeError(f"expected object, got {_describe(value)}")
        return default(value, cls)

    return hook


_converter.register_structure_hook(ErrorInfo, _object_of(ErrorInfo))
_call = _object_of(ToolCall)
_converter.register_structure_hook(ToolCall, _call)
_converter.register_structure_hook_func(lambda t: t == tuple[ToolCall, ...], _tool_calls)

_UNSTRUCTURE: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    cls: _make_unstructure(cls) for cls in EVENT_TYPES
}
_JSON_FIELDS_OF: dict[type[Any], tuple[str, ...]] = {cls: _json_fields(cls) for cls in EVENT_TYPES}
_REQUIRED: dict[type[Any], tuple[str, ...]] = {
    cls: _BASE_REQUIRED
    + tuple(
        a.name
        for a in attrs.fields(cls)
        if a.default is attrs.NOTHING and a.name not in ("run", "seq")
    )
    for cls in EVENT_TYPES
}


def from_dict(obj: object) -> Event:
    """Decode the wire form made by [`to_dict`][runstream.codec.to_dict].

    Unknown keys are ignored, so newer producers can add fields.

    Raises:
        DecodeError: `obj` is not a mapping, its `type` is missing or unknown, or
            a field is missing or has the wrong type (the message names it),
            or a JSON field holds something JSON cannot carry.
    """
    return _decode_any(obj, check_json=True)


def _decode_any(obj: object, *, check_json: bool = False) -> Event:
    """`_decode` that raises only `DecodeError`, whatever `obj` does.

    With `check_json`, also check that the JSON fields hold only JSON values:
    parsed JSON always does, a mapping built in Python may not.
    """
    try:
        event = _decode(obj)
        if check_json:
            for name in _JSON_FIELDS_OF[type(event)]:
                try:
                    jsonable(getattr(event, name), name)
                except EncodeError as exc:
                    raise DecodeError(f"{event.type}: {exc}") from None
        return event
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("nested too deeply") from None
    except Exception as exc:  # a mapping whose methods raise, and the like
        raise DecodeError(f"cannot read the input: {type(exc).__name__}: {exc}") from None


def _decode(obj: object) -> Event:
    if not isinstance(obj, Mapping):
        raise DecodeError(f"expected a JSON object, got {_describe(obj)}")
    tag = obj.get("type")
    if tag is None:
        raise DecodeError(f"missing field 'type' (one of: {_KNOWN})")
    cls = _BY_TYPE.get(tag) if type(tag) is str else None
    if cls is None:
        raise DecodeError(f"unknown event type {tag!r}; known types: {_KNOWN}")
    missing = [name for name in _REQUIRED[cls] if name not in obj]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        raise DecodeError(f"{tag}: missing field{'s' if len(missing) > 1 else ''} {names}")
    data = {k: v for k, v in obj.items() if k not in _IDENTITY and k != "type"}
    data["run"] = {k: obj.get(k) for k in _IDENTITY}
    seq = obj["seq"]
    if type(seq) is int and seq < 0:
        raise DecodeError(f"{tag}: field 'seq': must be >= 0, got {seq}")
    try:
        return _converter.structure(data, cls)
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        raise DecodeError(f"{tag}: {_explain(exc)}") from None


def _explain(exc: BaseException, path: str = "") -> str:
    problems = []
    for line in cattrs.transform_error(exc, path=path, format_exception=_format):
        message, _, where = line.rpartition(" @ ")
        where = where.lstrip("$.").removeprefix("run.")
        if message.startswith(_AS_IS):
            problems.append(message.removeprefix(_AS_IS))
        else:
            problems.append(f"field '{where}': {message}" if where else message)
    return "; ".join(problems[:5])


_AS_IS = "\x00"  # marks a message of `_Explained`, which names its own fields


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _Explained):
        return _AS_IS + str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    return str(exc) or type(exc).__name__


def loads(data: bytes | bytearray | memoryview | str) -> Event:
    """Decode one event from JSON text or UTF-8 bytes.

    Raises:
        DecodeError: the input is not JSON, or not a valid event (see
            [`from_dict`][runstream.codec.from_dict]). Nothing else is raised.
    """
    if not isinstance(data, str | bytes | bytearray | memoryview):
        # bytes(3 * 10**9) would allocate gigabytes of zeros before failing
        raise DecodeError(f"expected JSON text or bytes, got {type(data).__name__}")
    try:
        if not isinstance(data, str):
            data = bytes(data).decode()
        obj = json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise DecodeError("not JSON: nested too deeply") from None
    except Exception as exc:  # invalid UTF-8 or JSON, a number too long to convert, ...
        raise DecodeError(f"not JSON: {exc}") from None
    return _decode_any(obj)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")
