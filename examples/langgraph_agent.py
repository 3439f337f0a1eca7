"""A LangGraph graph's run as a runstream event stream, rendered by pattern matching.

Needs `pip install "runstream[langgraph]"`. The graph here plans a tool call,
runs it with LangGraph's `ToolNode`, and streams its answer from LangChain's
`GenericFakeChatModel` (offline, no key); put any chat model of yours in its
place.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

import runstream as rs
from runstream.adapters.langgraph import from_langgraph


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


chat = GenericFakeChatModel(messages=iter(["It is sunny in Oslo."]))


def plan(state: MessagesState) -> dict[str, Any]:
    call = {"name": "weather", "args": {"city": "Oslo"}, "id": "w1"}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


async def answer(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await chat.ainvoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("plan", plan)
builder.add_node("tools", ToolNode([weather]))
builder.add_node("answer", answer)
builder.add_edge(START, "plan")
builder.add_edge("plan", "tools")
builder.add_edge("tools", "answer")
graph = builder.compile(name="forecaster")


async def main() -> None:
    question = {"messages": [{"role": "user", "content": "What is the weather in Oslo?"}]}
    async for event in from_langgraph(graph, question):
        match event:
            case rs.ToolStart(tool_name=name, payload=args):
                print(f"{event.seq:>2} {event.node}: tool {name} {args}")
            case rs.ToolEnd(result=result):
                print(f"{event.seq:>2} {event.node}: -> {result}")
            case rs.AssistantReply(text=text, done=False):
                print(f"{event.seq:>2} {event.node}: reply {text!r}")
            case rs.StateUpdate(updates=updates) if event.node != "langgraph":
                print(f"{event.seq:>2} {event.node}: updated {', '.join(updates)}")
            case rs.Workflow(phase=phase):
                print(f"{event.seq:>2} {phase.value}")


if __name__ == "__main__":
    asyncio.run(main())
