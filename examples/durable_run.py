"""A run that waits for an answer without holding a task, and a thread that remembers.

The graph is compiled with an SQLite checkpointer. On a Runtime, the run that
asks is suspended (saved, its task ended); a brand-new Runtime (as after a
restart) answers it and the run goes on where it stopped, `seq` continuing.
Then two runs of one thread: the second starts from the first one's state.

    python examples/durable_run.py
"""

from __future__ import annotations

import asyncio
import operator
import tempfile
from pathlib import Path
from typing import Annotated, TypedDict

import runstream as rs


class Booking(TypedDict, total=False):
    notes: Annotated[list[str], operator.add]


async def book(state: Booking, ctx: rs.RunContext) -> Booking:
    when = await ctx.ask("For what time?")
    return {"notes": [f"table at {when}"]}


def graphs(store: rs.Checkpointer) -> dict[str, rs.CompiledGraph]:
    g = rs.StateGraph(Booking, name="booker")
    g.add_node("book", book)
    g.add_edge(rs.START, "book")
    return {"booker": g.compile(checkpointer=store)}


async def main() -> None:
    folder = Path(tempfile.mkdtemp())
    store = rs.SqliteCheckpointer(folder / "runs.db")
    bus = rs.MemoryBus()  # a RedisBus / NatsBus in production: it outlives processes

    async with rs.Runtime(graphs(store), bus=bus) as rt:
        run_id = await rt.start("booker", thread_id="ann")
        async for event in rt.events(run_id):
            print(f"{event.seq:>2} {event.type}")
            if isinstance(event, rs.AwaitClarification):
                request_id = event.request_id
                break
        app = rt.graphs["booker"]
        # The run lets go of its task once it is saved (nothing announces it: look).
        while (checkpoint := await app.load_checkpoint(run_id)).status != "suspended":  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        print(f"   {checkpoint.status} at seq {checkpoint.seq}; tasks held: {rt.executing}")

    async with rs.Runtime(graphs(store), bus=bus) as rt:  # as after a restart
        await rt.answer(run_id, request_id, "19:30")
        async for event in rt.events(run_id, after=checkpoint.seq - 1):
            shown = event.data if isinstance(event, rs.Custom) else ""
            print(f"{event.seq:>2} {event.type} {shown}")
        second = await rt.start("booker", thread_id="ann")
        async for event in rt.events(second):
            if isinstance(event, rs.AwaitClarification):
                await rt.answer(second, event.request_id, "20:00")
        await rt.wait(second)
    print("thread ann:", await graphs(store)["booker"].get_state("ann"))
    store.close()


if __name__ == "__main__":
    asyncio.run(main())
