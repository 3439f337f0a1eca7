"""runstream: an agent or graph run as a cold reactive observable of typed events.

Example:
    ```python
    import runstream as rs

    async for event in app.run({"question": "why is the sky blue?"}):
        match event:
            case rs.AssistantReply(text=text):
                print(text, end="")
    ```
"""

from typing import TYPE_CHECKING, Any

from . import ops as ops
from . import protocols as protocols
from ._schema import ArgumentError, SchemaError
from .agents import (
    MaxTurnsExceeded,
    Tool,
    ToolDenied,
    UnknownToolError,
    agent_tool,
    create_agent,
    tool,
)
from .buses import HistoryGone, MemoryBus, RunRecord, UnknownRun, open_bus
from .codec import DecodeError, EncodeError
from .events import (
    EVENT_TYPES,
    JSON,
    AgentRunStarted,
    AssistantReply,
    AwaitClarification,
    AwaitExternalTools,
    Custom,
    ErrorInfo,
    Event,
    Phase,
    PlannerThought,
    RunInfo,
    StateUpdate,
    ToolCall,
    ToolEnd,
    ToolStart,
    ToolUpdate,
    Usage,
    Workflow,
)
from .graph import (
    END,
    START,
    AlreadyAnswered,
    Checkpoint,
    Checkpointer,
    CheckpointError,
    Command,
    CompiledGraph,
    GraphError,
    Inbox,
    MemoryCheckpointer,
    RoutingError,
    RunCanceled,
    RunContext,
    RunFailed,
    RunStream,
    SqliteCheckpointer,
    StateGraph,
    StepLimitError,
    TextStream,
    ThreadBusy,
    ToolCallHandle,
    UnknownRequest,
)
from .models import (
    ChatModel,
    Message,
    ModelChunk,
    ModelError,
    ScriptedModel,
    ScriptExhausted,
    ToolSpec,
    Turn,
)
from .sinks import (
    Attachment,
    CallbackSink,
    ConsoleSink,
    JsonlSink,
    MemorySink,
    Sink,
    SinkOverflow,
    SinkPolicy,
    SinkStats,
    SinkTimeout,
    attach,
    drain,
    with_policy,
)
from .sources import from_async_iterable, replay_jsonl

__version__ = "0.1.0.dev0"

from .runtime import Runtime, UnknownGraph, WorkerLost

if TYPE_CHECKING:
    from .buses import NatsBus, RedisBus


def __getattr__(name: str) -> Any:
    # The broker buses need their extra (redis, nats): imported only when asked for.
    if name in ("RedisBus", "NatsBus"):
        from . import buses

        return getattr(buses, name)
    if name == "OpenAIChatModel":  # needs httpx (the openai extra)
        from . import models

        return models.OpenAIChatModel
    raise AttributeError(f"module 'runstream' has no attribute {name!r}")


__all__ = [
    "HistoryGone",
    "MemoryBus",
    "NatsBus",
    "RedisBus",
    "RunRecord",
    "Runtime",
    "UnknownGraph",
    "UnknownRun",
    "WorkerLost",
    "open_bus",
    "END",
    "EVENT_TYPES",
    "JSON",
    "START",
    "AgentRunStarted",
    "ArgumentError",
    "AssistantReply",
    "Attachment",
    "AwaitClarification",
    "AwaitExternalTools",
    "CallbackSink",
    "ChatModel",
    "Command",
    "CompiledGraph",
    "ConsoleSink",
    "Custom",
    "DecodeError",
    "EncodeError",
    "ErrorInfo",
    "Event",
    "GraphError",
    "JsonlSink",
    "MaxTurnsExceeded",
    "MemorySink",
    "Message",
    "ModelChunk",
    "ModelError",
    "OpenAIChatModel",
    "Phase",
    "PlannerThought",
    "RoutingError",
    "RunCanceled",
    "RunContext",
    "RunFailed",
    "RunInfo",
    "RunStream",
    "ScriptExhausted",
    "SchemaError",
    "ScriptedModel",
    "Sink",
    "SinkOverflow",
    "SinkTimeout",
    "SinkPolicy",
    "SinkStats",
    "StateGraph",
    "StateUpdate",
    "StepLimitError",
    "TextStream",
    "Tool",
    "ToolCall",
    "ToolCallHandle",
    "ToolEnd",
    "ToolSpec",
    "ToolStart",
    "ToolUpdate",
    "Turn",
    "UnknownToolError",
    "Usage",
    "Workflow",
    "agent_tool",
    "attach",
    "create_agent",
    "drain",
    "from_async_iterable",
    "replay_jsonl",
    "tool",
    "with_policy",
    "AlreadyAnswered",
    "Inbox",
    "UnknownRequest",
    "ToolDenied",
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "MemoryCheckpointer",
    "SqliteCheckpointer",
    "ThreadBusy",
]
