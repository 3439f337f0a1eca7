"""Sinks are typed by the items they take; checked by tests/sinks/test_sinks_typing.py.

`Sink` is contravariant: a sink of a wider type (`Sink[Event]`) takes a narrower
stream (`Observable[ToolEnd]`), never the other way round. Each line ending in an
expect-error comment must produce exactly one error containing the comment's
text; every other line must type-check.
"""

from __future__ import annotations

from pathlib import Path

from reactivex import Observable

import runstream as rs
from runstream import ops


class EndSink:
    """Takes only ToolEnd events."""

    async def send(self, item: rs.ToolEnd) -> None:
        print(item.duration)

    async def close(self) -> None:
        return None


async def passing(src: Observable[rs.Event], path: Path) -> None:
    ends: Observable[rs.ToolEnd] = src.pipe(ops.of_type(rs.ToolEnd))
    everything: rs.Sink[rs.Event] = rs.MemorySink[rs.Event]()
    att: rs.Attachment[rs.Event] = rs.attach(src, everything, rs.ConsoleSink())
    narrow: rs.Attachment[rs.ToolEnd] = rs.attach(ends, EndSink(), everything)
    policy: rs.SinkPolicy[rs.Event] = rs.with_policy(everything, overflow="drop_oldest")
    stats: tuple[rs.SinkStats, ...] = await rs.drain(ends, policy, rs.JsonlSink(path))
    await rs.drain(ends, rs.with_policy(EndSink(), buffer=8), close_timeout=1.0)
    await rs.drain(src.pipe(ops.batch(10, 0.1)), rs.MemorySink[list[rs.Event]]())
    await rs.drain(ends, rs.CallbackSink(lambda e: print(e.tool_name)))
    await rs.drain(src, rs.MemorySink(), rs.ConsoleSink())
    print(att, narrow, stats)


async def failing(src: Observable[rs.Event], floats: Observable[float], path: Path) -> None:
    rs.attach(src, EndSink())  # expect-error: Cannot infer
    rs.attach(src, rs.with_policy(EndSink()))  # expect-error: Cannot infer
    await rs.drain(floats, rs.JsonlSink(path))  # expect-error: Cannot infer
    rs.attach(src, 42)  # expect-error: incompatible type "int"
    await rs.drain(src, rs.MemorySink[rs.Event](), close_timeout="5")  # expect-error: "str"
    end_only: rs.Sink[rs.ToolEnd] = EndSink()
    wide: rs.Sink[rs.Event] = end_only  # expect-error: Incompatible types in assignment
    print(wide)
