"""200,000 events through operators into three sinks with three different policies."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import runstream as rs
from _support.invariants import settle
from runstream import ops

pytestmark = pytest.mark.anyio

N = 200_000
BUFFER = 256


class CountingSink:
    """Keeps seqs (not events), checks the contract, and can be slow or fail."""

    def __init__(self, *, pause_every: int = 0, fail_at: int | None = None) -> None:
        self.seqs: list[int] = []
        self.texts: list[str] = []
        self.closes = 0
        self.in_send = False
        self.pause_every = pause_every
        self.fail_at = fail_at
        self.last: rs.Event | None = None

    async def send(self, item: rs.Event) -> None:
        assert not self.in_send
        assert self.closes == 0
        self.in_send = True
        try:
            if self.fail_at is not None and len(self.seqs) == self.fail_at:
                raise RuntimeError("failing sink")
            if self.pause_every and len(self.seqs) % self.pause_every == 0:
                await anyio.sleep(0.001)
            self.seqs.append(item.seq)
            if isinstance(item, rs.AssistantReply):
                self.texts.append(item.text)
            self.last = item
        finally:
            self.in_send = False

    async def close(self) -> None:
        self.closes += 1


def producer() -> rs.CompiledGraph:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.stream_reply() as m:
            for i in range(N // 2):
                await m.write(f"{i} ")
                if i % 10_000 == 0:
                    await ctx.custom("mark", i)  # forces a flush of pending text

    g = rs.StateGraph(name="stress")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    return g.compile()


@pytest.mark.timeout(120)
async def test_stress_three_sinks_three_policies() -> None:
    # ~1 ms every 5 items: about 200 µs an item, 100x the producer's ~2 µs an event
    slow = CountingSink(pause_every=5)  # blocks
    dropping = CountingSink(pause_every=2)  # even slower, but drops instead of waiting
    failing = CountingSink(fail_at=1000)
    source = (
        producer()
        .run({})
        .pipe(
            ops.of_type(rs.AssistantReply, rs.Custom, rs.Workflow),
            ops.coalesce_text(window=0.01, max_chars=64),
        )
    )
    att = rs.attach(
        source,
        slow,
        rs.with_policy(dropping, overflow="drop_oldest", buffer=64),
        failing,
        buffer=BUFFER,
    )
    stats = await att.wait()

    # no loss on the blocking sink: every character, in order, and the run completed
    total = slow.seqs
    assert "".join(slow.texts) == "".join(f"{i} " for i in range(N // 2))
    assert total == sorted(total)
    assert isinstance(slow.last, rs.Workflow)
    assert slow.last.phase is rs.Phase.COMPLETED
    assert stats[0].delivered == len(total)
    assert stats[0].dropped == 0
    assert stats[0].max_queued <= BUFFER

    # exact drop counts: what the dropping sink missed is exactly what stats say
    assert stats[1].dropped > 0
    assert stats[1].delivered + stats[1].dropped == len(total)
    assert set(dropping.seqs) <= set(total)
    assert len(set(total) - set(dropping.seqs)) == stats[1].dropped
    assert stats[1].max_queued <= 64
    assert all(a < b for a, b in itertools.pairwise(dropping.seqs))

    # the failing sink was isolated at item 1,000
    assert len(failing.seqs) == 1000
    assert isinstance(stats[2].error, RuntimeError)
    assert att.errors == [stats[2].error]

    assert [s.closes for s in (slow, dropping, failing)] == [1, 1, 1]
    await settle()


async def test_invariants_hold_through_the_operators() -> None:
    memory = rs.MemorySink[rs.Event]()
    source = producer().run({}).pipe(ops.coalesce_text(window=0.01, max_chars=4096))
    await rs.drain(source, memory)
    # merged chunks keep the seq of their last chunk: still increasing, ending at the terminal
    seqs = [e.seq for e in memory.items]
    assert seqs == sorted(seqs)
    assert len(seqs) < N // 10
    workflows = [e for e in memory.items if isinstance(e, rs.Workflow)]
    assert [w.phase for w in workflows] == [rs.Phase.STARTED, rs.Phase.COMPLETED]
    assert memory.items[-1] is workflows[-1]
    text = "".join(e.text for e in memory.items if isinstance(e, rs.AssistantReply))
    assert text == "".join(f"{i} " for i in range(N // 2))
