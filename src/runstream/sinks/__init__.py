"""Sinks and attaching: carry a stream to memory, a callback, a file or a terminal.

Example:
    ```python
    memory, log = rs.MemorySink(), rs.JsonlSink("run.jsonl")
    stats = await rs.drain(app.run(x), memory, log, rs.ConsoleSink())
    ```
"""

from ._attach import (
    Attachment,
    SinkOverflow,
    SinkPolicy,
    SinkStats,
    SinkTimeout,
    attach,
    drain,
    uses_send_batch,
    with_policy,
)
from ._builtin import CallbackSink, ConsoleSink, JsonlSink, MemorySink, Sink

__all__ = [
    "Attachment",
    "CallbackSink",
    "ConsoleSink",
    "JsonlSink",
    "MemorySink",
    "Sink",
    "SinkOverflow",
    "SinkPolicy",
    "SinkStats",
    "SinkTimeout",
    "attach",
    "drain",
    "uses_send_batch",
    "with_policy",
]
