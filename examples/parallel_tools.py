"""Two tools in parallel, live: their events interleave as they happen.

An agent's model asks for two tool calls in one turn; the agent runs them
concurrently, each reporting progress. The printout shows both tools started
before either finished, and the updates of both interleaved.
"""

import asyncio

import runstream as rs


@rs.tool
async def download(url: str, call: rs.ToolCallHandle) -> int:
    """Download a file and return its size in bytes."""
    for step in range(1, 4):
        await asyncio.sleep(0.02)
        await call.update(progress=step / 3, message=f"chunk {step}/3")
    return 3 * 1024


@rs.tool
async def index(corpus: str, call: rs.ToolCallHandle) -> int:
    """Index a corpus and return the number of documents."""
    for step in range(1, 3):
        await asyncio.sleep(0.03)
        await call.update(progress=step / 2)
    return 42


model = rs.ScriptedModel(
    [
        rs.Turn(
            tool_calls=[
                ("download", {"url": "https://example.invalid/data.csv"}),
                ("index", {"corpus": "papers"}),
            ]
        ),
        "Downloaded 3 KiB and indexed 42 documents.",
    ]
)
agent = rs.create_agent(model, tools=[download, index], name="parallel")


async def main() -> None:
    async for ev in agent.run("Fetch the data and index the papers."):
        match ev:
            case rs.ToolStart(tool_name=name):
                print(f"start   {name}")
            case rs.ToolUpdate(tool_name=name, progress=progress):
                print(f"update  {name} {progress:.0%}")
            case rs.ToolEnd(tool_name=name, duration=seconds, result=result):
                print(f"end     {name} -> {result} in {seconds:.2f}s")
            case rs.AssistantReply(text=text):
                print(text, end="")
    print()


if __name__ == "__main__":
    asyncio.run(main())
