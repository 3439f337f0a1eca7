"""Durable runs: what a checkpoint holds, how it is encoded, and where it is kept.

A checkpointer is a small key-value store of bytes. Keys: `run/{run_id}` (a
run's last checkpoint, deleted when the run ends), `thread/{thread_id}` (a
thread's last final state) and `lock/{thread_id}` (the run that holds the
thread). `MemoryCheckpointer` and `SqliteCheckpointer` live here; `RedisBus`
and `NatsBus` implement the same four methods.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import anyio
import attrs
import cattrs

from ..codec import EncodeError, is_json_type, jsonable

__all__ = [
    "Await",
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "MemoryCheckpointer",
    "SqliteCheckpointer",
    "ThreadBusy",
    "decode_checkpoint",
    "decode_state",
    "decode_thread",
    "encode_checkpoint",
    "encode_state",
    "encode_thread",
    "state_types",
]

Status = Literal["running", "awaiting", "suspended"]
_FORMAT = 1


class CheckpointError(ValueError):
    """A state cannot be saved in a checkpoint (the message names the key), or a
    saved checkpoint cannot be read back."""


class ThreadBusy(RuntimeError):
    """Another run of the same thread is in progress: a thread runs one run at a time.

    Never raised to the caller of `run`: it is the `error.type` of the
    refused run's `Workflow(failed)` (`invoke` raises `RunFailed` from it).
    """


@runtime_checkable
class Checkpointer(Protocol):
    """Where a compiled graph keeps its checkpoints: bytes by key.

    `rs.MemoryCheckpointer()`, `rs.SqliteCheckpointer(path)`, `RedisBus` and
    `NatsBus` implement it; so can your own store.
    """

    async def save_checkpoint(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there."""

    async def load_checkpoint(self, key: str) -> bytes | None:
        """What `key` holds, or None."""

    async def delete_checkpoint(self, key: str) -> None:
        """Forget `key` (nothing happens if it is not there)."""

    async def claim_checkpoint(self, key: str, owner: str) -> str:
        """Store `owner` under `key` unless the key is held; return the holder.

        Atomic: of two callers at once, one gets its own `owner` back.
        """


class MemoryCheckpointer:
    """Checkpoints in this process's memory: for tests and single-process apps.

    Survives nothing: a restart loses them. Use `SqliteCheckpointer` or a bus
    for runs that must outlive the process.
    """

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"MemoryCheckpointer({len(self._data)} keys)"

    async def save_checkpoint(self, key: str, data: bytes) -> None:
        """Store `data` under `key`."""
        self._data[key] = data

    async def load_checkpoint(self, key: str) -> bytes | None:
        """What `key` holds, or None."""
        return self._data.get(key)

    async def delete_checkpoint(self, key: str) -> None:
        """Forget `key`."""
        self._data.pop(key, None)

    async def claim_checkpoint(self, key: str, owner: str) -> str:
        """Hold `key` for `owner` unless held; return the holder."""
        return self._data.setdefault(key, owner.encode()).decode()


class SqliteCheckpointer:
    """Checkpoints in an SQLite file (stdlib `sqlite3`), written off the event loop.

    Several processes may share the file (WAL mode): a worker that takes
    over a run reads the checkpoint another one wrote.

    Args:
        path: the database file (made if missing).

    Raises:
        CheckpointError: the file cannot be opened as an SQLite database.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS runstream_checkpoints "
                "(key TEXT PRIMARY KEY, data BLOB NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot open {str(path)!r} as SQLite: {exc}") from None

    def __repr__(self) -> str:
        return f"SqliteCheckpointer({str(self.path)!r})"

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def _call(self, sql: str, args: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    async def _run(self, sql: str, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(self._call, sql, args)

    async def save_checkpoint(self, key: str, data: bytes) -> None:
        """Store `data` under `key`."""
        await self._run(
            "INSERT INTO runstream_checkpoints (key, data) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET data = excluded.data",
            key,
            data,
        )

    async def load_checkpoint(self, key: str) -> bytes | None:
        """What `key` holds, or None."""
        row = await self._run("SELECT data FROM runstream_checkpoints WHERE key = ?", key)
        return None if row is None else bytes(row[0])

    async def delete_checkpoint(self, key: str) -> None:
        """Forget `key`."""
        await self._run("DELETE FROM runstream_checkpoints WHERE key = ?", key)

    async def claim_checkpoint(self, key: str, owner: str) -> str:
        """Hold `key` for `owner` unless held; return the holder."""
        row = await self._run(
            "INSERT INTO runstream_checkpoints (key, data) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET data = data RETURNING data",
            key,
            owner.encode(),
        )
        return bytes(row[0]).decode()


# --- what a checkpoint holds ---------------------------------------------------------


@attrs.define
class Await:
    """A question a node of the step asked (`ctx.ask`, `ctx.external_tools`).

    Attributes:
        request_id: the request's id (the same when the node runs again).
        node: the node that asked.
        index: which of that node's questions in the step (0, 1, ...).
        results: for tool calls, how many results the answer holds.
        answered: whether the answer is in.
        value: the answer, once in.
    """

    request_id: str
    node: str | None
    index: int
    results: int | None = None
    answered: bool = False
    value: Any = None


@attrs.define
class Checkpoint:
    """A root run between two steps, or within a step waiting for answers.

    Attributes:
        run_id, agent, thread_id: the run.
        state: the state before the step in `next`.
        next: the nodes of the next step (sorted).
        joined: for each waiting join edge (by index), the sources seen so far.
        step: how many steps are done.
        seq: the run tree's next `seq`.
        step_seq: the `seq` at which the step in `next` began (== `seq` between steps).
        phase: the last non-terminal phase a node entered.
        awaits: the questions asked in the step (status `awaiting`/`suspended`).
        done: nodes of the step that finished already: their update and gotos.
        tools: ids of tool calls started and not ended.
        status: `running` (between steps), `awaiting` (a node waits for an
            answer), `suspended` (and no process holds the run).
    """

    run_id: str
    agent: str
    thread_id: str | None
    state: dict[str, Any]
    next: list[str]
    joined: dict[int, list[str]] = attrs.Factory(dict)
    step: int = 0
    seq: int = 0
    step_seq: int = 0
    phase: str | None = None
    awaits: list[Await] = attrs.Factory(list)
    done: dict[str, tuple[dict[str, Any], list[str]]] = attrs.Factory(dict)
    tools: list[str] = attrs.Factory(list)
    status: Status = "running"


_state_converter = cattrs.Converter()
# Fields typed `JSON` (`ToolCall.payload`) are kept as they are.
_state_converter.register_structure_hook_func(is_json_type, lambda value, _: value)


def state_types(schema: Any) -> dict[str, Any]:
    """The type of each key of a state schema (a TypedDict), for decoding."""
    if schema is None or schema is dict:
        return {}
    try:
        return typing.get_type_hints(schema)
    except Exception:  # the builder reported an unreadable schema already
        return {}


def encode_state(state: Mapping[str, Any], where: str = "state") -> dict[str, Any]:
    """The state as JSON values (attrs classes, tuples... through cattrs).

    Raises:
        CheckpointError: a value cannot be saved; the message names its key.
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        try:
            out[key] = jsonable(_state_converter.unstructure(value), key)
        except (EncodeError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{where} key {key!r} cannot be saved in a checkpoint: {exc}. "
                "Keep state values JSON, attrs classes or dataclasses"
            ) from None
    return out


def decode_state(raw: Mapping[str, Any], types: Mapping[str, Any]) -> dict[str, Any]:
    """The state from `encode_state`'s form, each key back to its declared type.

    Raises:
        CheckpointError: a value does not fit its key's type.
    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        hint = types.get(key)
        if hint is None:
            out[key] = value
            continue
        try:
            out[key] = _state_converter.structure(value, hint)
        except Exception as exc:
            raise CheckpointError(
                f"checkpointed state key {key!r} does not fit {hint!r}: {exc}"
            ) from None
    return out


def _unstructured(value: object) -> Any:
    """`json.dumps`'s `default`: attrs classes and dataclasses through cattrs."""
    if attrs.has(type(value)) or dataclasses.is_dataclass(value):
        return _state_converter.unstructure(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dumps(body: Mapping[str, Any], state: Mapping[str, Any], where: str) -> bytes:
    """`body` as compact JSON, in one pass of the C encoder.

    Raises:
        CheckpointError: naming the first key of `state` that cannot be saved.
    """
    try:
        return json.dumps(
            body, separators=(",", ":"), allow_nan=False, default=_unstructured
        ).encode()
    except (TypeError, ValueError):
        encode_state(state, where)  # raises, naming the key
        raise


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    """The checkpoint as compact JSON bytes.

    Raises:
        CheckpointError: the state (or a finished node's update) cannot be saved.
    """
    body = {
        "v": _FORMAT,
        "run_id": checkpoint.run_id,
        "agent": checkpoint.agent,
        "thread_id": checkpoint.thread_id,
        "state": checkpoint.state,
        "next": checkpoint.next,
        "joined": {str(k): sorted(v) for k, v in checkpoint.joined.items()},
        "step": checkpoint.step,
        "seq": checkpoint.seq,
        "step_seq": checkpoint.step_seq,
        "phase": checkpoint.phase,
        "awaits": [attrs.asdict(a) for a in checkpoint.awaits],
        "done": {node: [update, goto] for node, (update, goto) in checkpoint.done.items()},
        "tools": checkpoint.tools,
        "status": checkpoint.status,
    }
    try:
        return _dumps(body, checkpoint.state, "state")
    except CheckpointError:
        raise
    except (TypeError, ValueError):
        for node, (update, _) in checkpoint.done.items():
            encode_state(update, f"node {node!r} update:")
        raise CheckpointError(
            f"run {checkpoint.run_id}: cannot save a checkpoint: an answer is not JSON"
        ) from None


def encode_thread(state: Mapping[str, Any]) -> bytes:
    """A thread's final state as JSON bytes.

    Raises:
        CheckpointError: a value cannot be saved (its key named).
    """
    return _dumps({"v": _FORMAT, "state": state}, state, "state")


def decode_thread(data: bytes, types: Mapping[str, Any]) -> dict[str, Any]:
    """A thread's state from `encode_thread`'s bytes.

    Raises:
        CheckpointError: not such bytes, or a value does not fit its type.
    """
    try:
        body = json.loads(data)
        raw = body["state"]
        if body.get("v") != _FORMAT or not isinstance(raw, dict):
            raise ValueError("unknown thread format")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"not a runstream thread state: {exc!r}") from None
    return decode_state(raw, types)


def decode_checkpoint(data: bytes, types: Mapping[str, Any]) -> Checkpoint:
    """A checkpoint from `encode_checkpoint`'s bytes.

    Raises:
        CheckpointError: not such bytes, or a state value does not fit its type.
    """
    try:
        body = json.loads(data)
        if body.get("v") != _FORMAT:
            raise ValueError(f"unknown checkpoint format {body.get('v')!r}")
        return Checkpoint(
            run_id=body["run_id"],
            agent=body["agent"],
            thread_id=body["thread_id"],
            state=decode_state(body["state"], types),
            next=list(body["next"]),
            joined={int(k): list(v) for k, v in body["joined"].items()},
            step=int(body["step"]),
            seq=int(body["seq"]),
            step_seq=int(body["step_seq"]),
            phase=body["phase"],
            awaits=[Await(**a) for a in body["awaits"]],
            done={
                node: (decode_state(update, types), list(goto))
                for node, (update, goto) in body["done"].items()
            },
            tools=list(body["tools"]),
            status=body["status"],
        )
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"not a runstream checkpoint: {exc!r}") from None
