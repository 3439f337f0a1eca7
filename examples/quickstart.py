"""The README example: one node that calls a tool and streams a reply."""

import asyncio
from typing import TypedDict

import runstream as rs


class State(TypedDict, total=False):
    question: str
    answer: str


async def answer(state: State, ctx: rs.RunContext) -> dict[str, str]:
    async with ctx.tool("search", {"query": state["question"]}) as call:
        call.result = {"hits": 3}
    async with ctx.stream_reply() as m:
        for word in ("Runs ", "are ", "streams ", "of ", "typed ", "events."):
            await m.write(word)
    return {"answer": "Runs are streams of typed events."}


graph = rs.StateGraph(State, name="quickstart")
graph.add_node("answer", answer)
graph.add_edge(rs.START, "answer")
app = graph.compile()


async def main() -> None:
    async for ev in app.run({"question": "What is runstream?"}):
        match ev:
            case rs.ToolEnd(tool_name=name, duration=seconds):
                print(f"[{name} took {seconds * 1000:.1f} ms]")
            case rs.AssistantReply(text=text):
                print(text, end="", flush=True)
    print()


if __name__ == "__main__":
    asyncio.run(main())
