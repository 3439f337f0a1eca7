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
    Command,
    CompiledGraph,
    GraphError,
    RoutingError,
    RunCanceled,
    RunContext,
    RunFailed,
    RunStream,
    StateGraph,
    StepLimitError,
    TextStream,
    ToolCallHandle,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "END",
    "EVENT_TYPES",
    "JSON",
    "START",
    "AgentRunStarted",
    "AssistantReply",
    "AwaitClarification",
    "AwaitExternalTools",
    "Command",
    "CompiledGraph",
    "Custom",
    "DecodeError",
    "EncodeError",
    "ErrorInfo",
    "Event",
    "GraphError",
    "Phase",
    "PlannerThought",
    "RoutingError",
    "RunCanceled",
    "RunContext",
    "RunFailed",
    "RunInfo",
    "RunStream",
    "StateGraph",
    "StateUpdate",
    "StepLimitError",
    "TextStream",
    "ToolCall",
    "ToolCallHandle",
    "ToolEnd",
    "ToolStart",
    "ToolUpdate",
    "Usage",
    "Workflow",
]
