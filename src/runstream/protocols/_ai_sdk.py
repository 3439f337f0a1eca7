"""A root run's events as the AI SDK UI message stream (v1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable

from ..events import (
    AgentRunStarted,
    AssistantReply,
    AwaitClarification,
    AwaitExternalTools,
    Custom,
    Event,
    Phase,
    PlannerThought,
    StateUpdate,
    ToolEnd,
    ToolStart,
    ToolUpdate,
    Usage,
    Workflow,
)
from ._frame import Encoding, Frame, operator

__all__ = ["AiSdkTranslator", "to_ai_sdk"]


def to_ai_sdk() -> Callable[[Observable[Event]], Observable[Frame]]:
    """A root run's events as AI SDK UI message stream chunks, one `Frame` each.

    The run is one assistant message (`messageId` is the run id). A child
    run is shown inside the tool call that started it, as a
    `data-subagent` part keyed by the child's run id, never mixed into the
    parent's text. Internal replies and thoughts are left out. See
    docs/protocols/ai-sdk.md for the whole mapping.
    """
    return operator(AiSdkTranslator)


class AiSdkTranslator(Encoding):
    """Turns one root run's events, fed in `seq` order, into UI message chunks.

    `message_id` is the assistant message the run writes (`start.messageId`):
    the one a request continues, or by default the run's id.
    """

    kinds = ("text-delta", "reasoning-delta")
    id_key = "id"

    def __init__(self, message_id: str | None = None) -> None:
        self.message_id = message_id
        self.root = ""
        self.open: set[str] = set()
        self.children: dict[str, dict[str, Any]] = {}  # run id -> its data-subagent part
        self.partial: dict[str, str] = {}  # a child's message id -> its text so far
        self.usage = [0, 0]
        self.handed_over = False  # the run ended handing tool calls to the client
        self.announced: set[str] = set()  # tool calls whose tool part is out
        self.called = False  # the current step has tool calls

    def translate(self, event: Event) -> list[dict[str, Any]]:
        """The UI message chunks of an event that is not a plain text delta."""
        run = event.run
        if isinstance(event, Usage):  # the whole tree's, as AG-UI's RUN_FINISHED counts
            self.usage[0] += event.input_tokens
            self.usage[1] += event.output_tokens
            return []
        if self.root and run.run_id != self.root:
            return self._child(event)
        if isinstance(event, AssistantReply | PlannerThought):
            return [] if event.internal else self._text(event)
        if isinstance(event, ToolStart):
            self.called = True
            return self._call(event.tool_call_id, event.tool_name, event.payload)
        if isinstance(event, ToolEnd):
            if event.error is not None:
                text = f"{event.error.type}: {event.error.message}"
                return [
                    {
                        "type": "tool-output-error",
                        "toolCallId": event.tool_call_id,
                        "errorText": text,
                    }
                ]
            return [
                {
                    "type": "tool-output-available",
                    "toolCallId": event.tool_call_id,
                    "output": event.result,
                }
            ]
        if isinstance(event, ToolUpdate):
            progress: dict[str, Any] = {"toolCallId": event.tool_call_id}
            for key, field in (("progress", event.progress), ("message", event.message)):
                if field is not None:
                    progress[key] = field
            if event.data is not None:
                progress["data"] = event.data
            return [{"type": "data-tool-progress", "id": event.tool_call_id, "data": progress}]
        if isinstance(event, Custom):
            return [{"type": f"data-{event.name}", "data": event.data}]
        if isinstance(event, StateUpdate):
            if not event.updates:
                return []
            return [
                {
                    "type": "data-state",
                    "data": {"node": event.node, "updates": dict(event.updates)},
                    "transient": True,
                }
            ]
        if isinstance(event, AgentRunStarted):
            self.children[event.child_run_id] = {
                "runId": event.child_run_id,
                "agent": event.child_agent,
                "toolCallId": event.tool_call_id,
                "status": "running",
                "text": "",
                "tools": [],
            }
            return [self._subagent(event.child_run_id)]
        if isinstance(event, AwaitClarification):
            call = event.tool_call
            if call is not None:  # approve this call: the tool part, then the request
                approval = {
                    "type": "tool-approval-request",
                    "approvalId": event.request_id,
                    "toolCallId": call.tool_call_id,
                }
                return [*self._call(call.tool_call_id, call.tool_name, call.payload), approval]
            question = {"requestId": event.request_id, "question": event.question}
            return [{"type": "data-await", "id": event.request_id, "data": question}]
        if isinstance(event, AwaitExternalTools):
            self.called = self.handed_over = True
            out: list[dict[str, Any]] = []
            for call in event.calls:
                out += self._call(call.tool_call_id, call.tool_name, call.payload)
            return out
        if isinstance(event, Workflow):
            return self._workflow(event)
        return []

    def _workflow(self, event: Workflow) -> list[dict[str, Any]]:
        phase = event.phase
        if phase is Phase.STARTED and not self.root:
            self.root = event.run.run_id
            mid = self.message_id or self.root
            return [{"type": "start", "messageId": mid}, {"type": "start-step"}]
        if phase is Phase.COMPLETED:
            finish: dict[str, Any] = {"type": "finish", "finishReason": "stop"}
            if any(self.usage):
                i, o = self.usage
                finish["messageMetadata"] = {
                    "usage": {"inputTokens": i, "outputTokens": o, "totalTokens": i + o}
                }
            return [{"type": "finish-step"}, finish]
        if phase is Phase.FAILED:
            error = event.error
            text = f"{error.type}: {error.message}" if error is not None else "the run failed"
            return [{"type": "error", "errorText": text}]
        if phase is Phase.CANCELED:
            reason = event.error.message if event.error is not None else "canceled"
            return [{"type": "abort", "reason": reason}]
        return []

    def _text(self, event: AssistantReply | PlannerThought) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        mid = event.message_id
        kind = "text" if isinstance(event, AssistantReply) else "reasoning"
        if mid not in self.open:
            if self.called:
                # Text after tool calls is the next model turn: a step of its own,
                # as the AI SDK makes one step per model call. useChat's
                # lastAssistantMessageIsCompleteWithToolCalls looks at the last
                # step only: with the calls in it, it would send the chat again.
                self.called = False
                out += [{"type": "finish-step"}, {"type": "start-step"}]
            self.open.add(mid)
            out.append({"type": f"{kind}-start", "id": mid})
        if event.text:
            out.append({"type": f"{kind}-delta", "id": mid, "delta": event.text})
        if event.done:
            self.open.discard(mid)
            out.append({"type": f"{kind}-end", "id": mid})
        return out

    def _child(self, event: Event) -> list[dict[str, Any]]:
        """A child run's event: its `data-subagent` part, updated when it changes.

        Text is added as each message completes, not per chunk: a part is
        sent whole each time, so per-chunk updates would cost the square of
        the child's text.
        """
        run_id = event.run.run_id
        child = self.children.get(run_id)
        if child is None:
            return []
        if isinstance(event, AssistantReply) and not event.internal:
            mid = event.message_id
            if not event.done:
                self.partial[mid] = self.partial.get(mid, "") + event.text
                return []
            child["text"] += self.partial.pop(mid, "") + event.text
        elif isinstance(event, ToolStart):
            child["tools"].append(
                {"toolCallId": event.tool_call_id, "toolName": event.tool_name, "state": "running"}
            )
        elif isinstance(event, ToolEnd):
            for tool in child["tools"]:
                if tool["toolCallId"] == event.tool_call_id:
                    tool["state"] = "error" if event.error is not None else "done"
        elif isinstance(event, AgentRunStarted):
            self.children[event.child_run_id] = {
                "runId": event.child_run_id,
                "agent": event.child_agent,
                "toolCallId": event.tool_call_id,
                "parentRunId": run_id,
                "status": "running",
                "text": "",
                "tools": [],
            }
            return [self._subagent(event.child_run_id)]
        elif isinstance(event, Workflow) and event.phase.is_terminal:
            child["status"] = event.phase.value
            if event.error is not None:
                child["error"] = event.error.message
        else:
            return []
        return [self._subagent(run_id)]

    def _call(self, call_id: str, name: str, payload: Any) -> list[dict[str, Any]]:
        """The tool part of a call, once (an approval may have shown it already)."""
        if call_id in self.announced:
            return []
        self.announced.add(call_id)
        return [
            {"type": "tool-input-start", "toolCallId": call_id, "toolName": name},
            {
                "type": "tool-input-available",
                "toolCallId": call_id,
                "toolName": name,
                "input": payload,
            },
        ]

    def _subagent(self, run_id: str) -> dict[str, Any]:
        data = dict(self.children[run_id])
        data["tools"] = [dict(t) for t in data["tools"]]
        return {"type": "data-subagent", "id": run_id, "data": data}
