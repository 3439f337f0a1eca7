"""The built-in research agent behind `runstream demo`: offline and deterministic.

A scripted "researcher" thinks, then calls three tools at once: `web_search`
and `fetch_stats` (which report progress while they work) and `summarizer`,
a child agent with its own scripted model. Then it streams its answer.
"""

from __future__ import annotations

import anyio

from .agents import agent_tool, create_agent, tool
from .events import JSON
from .graph import CompiledGraph, ToolCallHandle
from .models import ChatModel, ScriptedModel, Turn

__all__ = ["build_demo_agent"]

_THOUGHT = (
    "The question is about current costs. I will search recent reports and pull "
    "price statistics in parallel, and ask the summarizer for the short version."
)

_SUMMARY = (
    "New solar farms now produce power for about a third of the cost of a decade "
    "ago, and in most markets they undercut new coal plants."
)

_ANSWER = (
    "Yes, in most of the world. Building new solar now costs less per megawatt-hour "
    "than building new coal: recent auctions put utility-scale solar near $40/MWh, "
    "against roughly $70-$100/MWh for new coal. Existing coal plants can still be "
    "cheap to run, and solar needs storage or backup for the evening peak, so the "
    "full comparison depends on the grid."
)

_SOURCES: list[JSON] = [
    {"title": "Renewable power generation costs", "source": "IRENA"},
    {"title": "Levelized cost of energy+", "source": "Lazard"},
    {"title": "World Energy Outlook", "source": "IEA"},
]


def build_demo_agent(delay: float = 0.03, model: ChatModel | None = None) -> CompiledGraph:
    """The research agent `runstream demo` runs.

    Args:
        delay: seconds between streamed chunks; the tools take a few times
            this long, so `delay=0` runs the whole demo at once.
        model: a real model for the researcher and its summarizer (default:
            the scripted ones, which need no key and no network).
    """
    step = delay * 4

    @tool
    async def web_search(query: str, call: ToolCallHandle) -> list[JSON]:
        """Search the web and return the most relevant reports."""
        for i, source in enumerate(("IRENA", "Lazard", "IEA"), start=1):
            await anyio.sleep(step)
            await call.update(progress=i / 3, message=f"read {source}")
        return _SOURCES

    @tool
    async def fetch_stats(topic: str, call: ToolCallHandle) -> dict[str, JSON]:
        """Fetch price statistics for a topic, in USD per MWh."""
        await anyio.sleep(step)
        await call.update(progress=0.5, message="querying price tables")
        await anyio.sleep(step)
        return {"topic": topic, "solar_usd_mwh": 40, "coal_usd_mwh": [70, 100], "year": 2024}

    summarizer = create_agent(
        model or ScriptedModel([Turn(text=_SUMMARY)], delay=delay, name="scripted-small"),
        name="summarizer",
        instructions="Summarize in two sentences.",
    )
    researcher = ScriptedModel(
        [
            Turn(
                thought=_THOUGHT,
                tool_calls=[
                    ("web_search", {"query": "solar vs coal cost per MWh"}),
                    ("fetch_stats", {"topic": "electricity generation cost"}),
                    ("summarizer", {"input": "How does the cost of solar compare to coal?"}),
                ],
            ),
            Turn(text=_ANSWER),
        ],
        delay=delay,
        name="scripted-large",
    )
    return create_agent(
        model or researcher,
        tools=[
            web_search,
            fetch_stats,
            agent_tool(summarizer, "summarizer", "Summarize a topic in two sentences."),
        ],
        name="researcher",
        instructions="Answer with evidence. Use the tools.",
    )
