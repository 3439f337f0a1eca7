"""The cost of a checkpoint per step: runstream's checkpointers beside LangGraph's savers.

One graph, built the same way in both: a chain of `--steps` nodes over a
state of one list, `items`, merged with `operator.add`; it starts with
`--size` bytes of small dicts (`{"id": i, "text": ...}`, about 100 bytes
each), and every node appends one more. Every step therefore changes the
big value, and each saver must write it again (LangGraph writes only the
channels a step changed; here that is `items`, every step).

Cases, each running `--runs` runs of the graph in one fresh `asyncio.run`:

- runstream: no checkpointer (its floor); `MemoryCheckpointer`;
  `SqliteCheckpointer` (a file in a temporary directory); `RedisBus` as the
  checkpointer (a real `redis-server` on loopback, started here);
- LangGraph: no checkpointer (its floor); `InMemorySaver`; `AsyncSqliteSaver`
  (langgraph-checkpoint-sqlite, a file in a temporary directory), each run on
  a thread of its own (LangGraph needs one to checkpoint).

runstream runs have no `thread_id` (a thread adds its lock and final state
per run, not per step). Both run through their async API (`invoke` /
`ainvoke`), with no event consumer.

Prints each case's median time per run (wall clock: the SQLite and Redis
writes happen outside this process's CPU time), then the cost of a checkpoint
per step: (case - its framework's floor) / steps, for state sizes 1 KB and
100 KB.

    python benchmarks/checkpoints.py [--steps 20] [--runs 30] [--rounds 5]
"""

from __future__ import annotations

import operator
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, TypedDict

from _common import header, parser, progress, run_rounds

import runstream as rs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _support.brokers import redis_server

Case = Callable[[], Awaitable[int]]


class State(TypedDict, total=False):
    items: Annotated[list[dict[str, Any]], operator.add]


def initial(size: int) -> dict[str, Any]:
    text = "x" * 80
    return {"items": [{"id": i, "text": text} for i in range(max(1, size // 100))]}


def chain(builder: Any, start: str, steps: int) -> Any:
    """The same chain of `steps` appending nodes, on runstream's or LangGraph's builder."""
    g = builder(State)
    for i in range(steps):

        async def node(state: State, i: int = i) -> State:
            return {"items": [{"id": -i, "text": "step"}]}

        g.add_node(f"s{i}", node)
    g.add_edge(start, "s0")
    for i in range(1, steps):
        g.add_edge(f"s{i - 1}", f"s{i}")
    return g


def runstream_graph(steps: int, checkpointer: rs.Checkpointer | None) -> rs.CompiledGraph:
    app: rs.CompiledGraph = chain(rs.StateGraph, rs.START, steps).compile(
        checkpointer=checkpointer, max_steps=steps + 1
    )
    return app


def langgraph_graph(steps: int, checkpointer: Any) -> Any:
    from langgraph.graph import START, StateGraph

    return chain(StateGraph, START, steps).compile(checkpointer=checkpointer)


def cases(size: int, steps: int, runs: int, folder: Path, redis_url: str) -> dict[str, Case]:
    start = initial(size)
    want = len(start["items"]) + steps

    def ours(make: Callable[[], rs.Checkpointer | None]) -> Case:
        async def case() -> int:
            store = make()
            app = runstream_graph(steps, store)
            n = 0
            for _ in range(runs):
                n = len((await app.invoke(start))["items"])
            assert n == want, n
            if isinstance(store, rs.RedisBus):
                await store.aclose()  # its connections belong to this event loop
            return runs

        return case

    def theirs(make: Callable[[], Any]) -> Case:
        async def case() -> int:
            saver = make()
            if hasattr(saver, "__aenter__"):
                async with saver as entered:
                    return await run(entered)
            return await run(saver)

        async def run(saver: Any) -> int:
            app = langgraph_graph(steps, saver)
            n = 0
            for r in range(runs):
                config = {"configurable": {"thread_id": f"t{r}-{time.perf_counter_ns()}"}}
                n = len((await app.ainvoke(start, config))["items"])
            assert n == want, n
            return runs

        return case

    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    sqlite = rs.SqliteCheckpointer(folder / f"runstream-{size}.db")

    def saver_sqlite() -> Any:
        return AsyncSqliteSaver.from_conn_string(str(folder / f"langgraph-{size}.db"))

    return {
        "runstream: none": ours(lambda: None),
        "runstream: MemoryCheckpointer": ours(rs.MemoryCheckpointer),
        "runstream: SqliteCheckpointer": ours(lambda: sqlite),
        "runstream: RedisBus": ours(lambda: rs.RedisBus(redis_url, prefix=f"bench{size}")),
        "langgraph: none": theirs(lambda: None),
        "langgraph: InMemorySaver": theirs(InMemorySaver),
        "langgraph: AsyncSqliteSaver": theirs(saver_sqlite),
    }


def main() -> None:
    p = parser(__doc__, events=None)
    p.add_argument("--steps", type=int, default=20, help="steps per run, default 20")
    p.add_argument("--runs", type=int, default=30, help="runs per case and round, default 30")
    args = p.parse_args()
    header("langgraph", "langgraph-checkpoint-sqlite", "redis", method="")
    print(
        f"method: wall time per run, median of {args.rounds} interleaved rounds (one warm-up); "
        f"{args.steps} steps per run, {args.runs} runs per case and round\n"
    )
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_url = stack.enter_context(redis_server()).url + "/0"
        for size in (1_000, 100_000):
            progress(f"state of {size:,} bytes")
            contenders = cases(size, args.steps, args.runs, folder, redis_url)
            seconds = run_rounds(contenders, args.runs, args.rounds, seed=args.seed)
            per_run = {
                name: statistics.median(t.wall for t in v) / args.runs
                for name, v in seconds.items()
            }
            print(f"state of about {size // 1000} KB:")
            print(f"  {'case':34s} {'ms per run':>11s} {'us per checkpoint':>18s}")
            for name, value in per_run.items():
                floor = per_run[name.split(":")[0] + ": none"]
                step = (value - floor) / args.steps
                cost = "" if name.endswith("none") else f"{step * 1e6:18.1f}"
                print(f"  {name:34s} {value * 1e3:11.2f} {cost}")
            print()


if __name__ == "__main__":
    main()
