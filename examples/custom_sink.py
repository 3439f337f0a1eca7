"""Write your own sink: a per-tool-call report, built from batches.

`ToolReport` is a sink: it has `send`, `send_batch` and `close`. `attach` hands
it everything queued at once through `send_batch`, never overlaps two calls and
calls `close` exactly once, after the last batch: that is where it prints the
report. The agent calls three tools in parallel, one of which fails, and a
child agent; the report groups the events of each call by `tool_call_id`.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import runstream as rs


@dataclass
class Call:
    """What one tool call did, from its events."""

    tool: str
    run: str
    updates: int = 0
    last_message: str | None = None
    duration: float | None = None
    error: str | None = None


class ToolReport:
    """Collects `ToolStart` / `ToolUpdate` / `ToolEnd` per call; prints them on close."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.batches = 0
        self.events = 0
        self.closed = False

    async def send(self, item: rs.Event) -> None:
        await self.send_batch([item])

    async def send_batch(self, items: Sequence[rs.Event]) -> None:
        self.batches += 1
        self.events += len(items)
        for event in items:
            match event:
                case rs.ToolStart(tool_call_id=call_id, tool_name=name):
                    self.calls[call_id] = Call(name, event.agent)
                case rs.ToolUpdate(tool_call_id=call_id, message=message):
                    self.calls[call_id].updates += 1
                    self.calls[call_id].last_message = message
                case rs.ToolEnd(tool_call_id=call_id, duration=duration, error=error):
                    self.calls[call_id].duration = duration
                    if error is not None:
                        self.calls[call_id].error = f"{error.type}: {error.message}"
                case _:
                    pass

    async def close(self) -> None:
        # attach promises exactly one close, after the last batch.
        assert not self.closed, "close called twice"
        self.closed = True
        print(f"{'agent':<10} {'tool':<10} {'updates':>7}  {'time':>6}  outcome")
        for call in self.calls.values():
            took = "-" if call.duration is None else f"{call.duration * 1000:.0f}ms"
            outcome = f"failed: {call.error}" if call.error else "ok"
            if call.last_message:
                outcome += f", last update: {call.last_message}"
            print(f"{call.run:<10} {call.tool:<10} {call.updates:>7}  {took:>6}  {outcome}")


@rs.tool
async def fetch(url: str, call: rs.ToolCallHandle) -> int:
    """Download a page and return its size."""
    for part in range(1, 4):
        await asyncio.sleep(0.01)
        await call.update(progress=part / 3, message=f"part {part}/3")
    return 2048


@rs.tool
async def parse(fmt: str) -> str:
    """Parse a document in the given format."""
    await asyncio.sleep(0.005)
    raise ValueError(f"unsupported format {fmt!r}")


@rs.tool
async def count(word: str, call: rs.ToolCallHandle) -> int:
    """Count the occurrences of a word."""
    await call.update(message="counted")
    return 7


checker = rs.create_agent(
    rs.ScriptedModel([rs.Turn(tool_calls=[("count", {"word": "solar"})]), "7 mentions."]),
    tools=[count],
    name="checker",
)
model = rs.ScriptedModel(
    [
        rs.Turn(
            tool_calls=[
                ("fetch", {"url": "https://example.invalid/report"}),
                ("parse", {"fmt": "pdf"}),
                ("check", {"input": "How often is solar mentioned?"}),
            ]
        ),
        "Fetched the report; PDF parsing is not supported; solar is mentioned 7 times.",
    ]
)
agent = rs.create_agent(
    model,
    tools=[fetch, parse, rs.agent_tool(checker, "check", "Count mentions in the report.")],
    name="reader",
)


async def main() -> None:
    report = ToolReport()
    sink: rs.Sink[rs.Event] = report  # checked by mypy: ToolReport is a Sink
    (stats,) = await rs.drain(agent.run("Read the report."), sink)
    print(f"{stats.delivered} events in {report.batches} batches, closed once: {report.closed}")


if __name__ == "__main__":
    asyncio.run(main())
