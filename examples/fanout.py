"""One run, three sinks, three policies: fan-out with per-sink backpressure.

One run of a research agent goes through two operators (`coalesce_text`
merges the reply's word-sized chunks, `latest_progress` throttles tool
progress) and then, through a single `attach`, to three sinks at once:

- a `ConsoleSink` that renders it live (blocking: loses nothing);
- a `JsonlSink` in a temporary directory (blocking: a lossless record);
- a slow "dashboard" that takes 20 ms per event, given its own small queue
  and `drop_oldest` with `with_policy`: it never slows the run down, and it
  loses what it cannot keep up with.

Then it prints each sink's stats and, comparing the dashboard's `seq`s with
the recorded file's, exactly which events the dashboard missed.
"""

import asyncio
import tempfile
from pathlib import Path

import runstream as rs
from runstream import ops


@rs.tool
async def search(query: str, call: rs.ToolCallHandle) -> list[str]:
    """Search recent reports."""
    for page in range(1, 11):
        await asyncio.sleep(0.01)
        await call.update(progress=page / 10, message=f"page {page}")
    return ["IRENA 2024", "Lazard LCOE+"]


@rs.tool
async def prices(fuel: str) -> dict[str, int]:
    """Look up the cost of new capacity, in USD per MWh."""
    await asyncio.sleep(0.03)
    return {"solar": 40, "coal": 85}


model = rs.ScriptedModel(
    [
        rs.Turn(
            thought="Search the reports and look up prices at the same time.",
            tool_calls=[("search", {"query": "solar vs coal"}), ("prices", {"fuel": "both"})],
        ),
        "Yes. New utility-scale solar costs about $40 per megawatt-hour, against "
        "roughly $85 for new coal, although solar needs storage or backup for "
        "the evening peak.",
    ],
    delay=0.005,
)
agent = rs.create_agent(model, tools=[search, prices], name="researcher")


class SlowDashboard:
    """A sink that takes 20 ms per event, and remembers the seqs it saw."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    async def send(self, item: rs.Event) -> None:
        await asyncio.sleep(0.02)
        self.seqs.append(item.seq)

    async def close(self) -> None:
        pass


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.jsonl"
        dashboard = SlowDashboard()
        source = agent.run("Is solar cheaper than coal?").pipe(
            ops.coalesce_text(0.05),
            ops.latest_progress(0.03),
        )
        att = rs.attach(
            source,
            rs.ConsoleSink(),
            rs.JsonlSink(path),
            rs.with_policy(dashboard, overflow="drop_oldest", buffer=4),
        )
        stats = await att.wait()

        recorded = rs.MemorySink[rs.Event]()
        await rs.drain(rs.replay_jsonl(path), recorded)

    print()
    print(f"{'sink':<10} {'delivered':>9} {'dropped':>7} {'max queued':>10}")
    for name, s in zip(("console", "jsonl", "dashboard"), stats, strict=True):
        print(f"{name:<10} {s.delivered:>9} {s.dropped:>7} {s.max_queued:>10}")

    seen = set(dashboard.seqs)
    missed = [event.seq for event in recorded.items if event.seq not in seen]
    print(f"the file holds {len(recorded.items)} events; the dashboard missed seq {missed}")
    got_last = dashboard.seqs[-1] == recorded.items[-1].seq
    print(f"missed == dropped: {len(missed) == stats[2].dropped}")
    print(f"the dashboard got the terminal event (drop_oldest keeps the newest): {got_last}")


if __name__ == "__main__":
    asyncio.run(main())
