"""A match over runstream.Event that handles every class: mypy --strict accepts it."""

from __future__ import annotations

from typing import assert_never

import runstream as rs


def render(ev: rs.Event) -> str:
    match ev:
        case rs.AssistantReply(text=text):
            return text
        case rs.PlannerThought(text=text):
            return f"({text})"
        case rs.ToolStart(tool_name=name):
            return f"{name}..."
        case rs.ToolUpdate(progress=progress):
            return f"{(progress or 0.0) * 100:.0f}%"
        case rs.ToolEnd(error=None, duration=duration):
            return f"ok in {duration + 0.0:.2f}s"
        case rs.ToolEnd(error=error):
            return f"failed: {error.message if error else ''}"
        case rs.Usage(input_tokens=i, output_tokens=o):
            return str(i + o)
        case rs.Workflow(phase=phase):
            return phase.value + (" (end)" if phase.is_terminal else "")
        case rs.AgentRunStarted(child_agent=child):
            return child
        case rs.AwaitClarification(question=question):
            return question
        case rs.AwaitExternalTools(calls=calls):
            return ", ".join(call.tool_name for call in calls)
        case rs.StateUpdate(updates=updates):
            return ", ".join(sorted(updates))
        case rs.Custom(name=name, run_id=run_id):
            return f"{run_id}: {name}"
        case _:
            assert_never(ev)
