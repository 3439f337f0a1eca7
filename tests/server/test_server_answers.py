"""Answers over HTTP: `POST /runs/{run_id}/answers` and `RemoteRuns.answer`."""

from __future__ import annotations

import httpx
import pytest

import runstream as rs
from _support.apps import booker
from _support.invariants import check_invariants, terminal
from _support.server import event_of, frames_of, live, start
from runstream.client import RemoteError, RemoteRuns
from runstream.server import create_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def test_a_run_waits_for_answers_posted_over_http() -> None:
    async with live(create_app({"booker": booker()})) as client:
        run_id = await start(client, "booker")
        events: list[rs.Event] = []
        async with client.stream("GET", f"/runs/{run_id}/events") as response:
            async for frame in frames_of(response):
                event = event_of(frame)
                events.append(event)
                if isinstance(event, rs.AwaitClarification):
                    await answer_question(client, run_id, event.request_id)
                elif isinstance(event, rs.AwaitExternalTools):
                    await answer_tools(client, run_id, event.request_id)
        check_invariants(events)
        terminal(events, rs.Phase.COMPLETED)
        update = next(e for e in events if isinstance(e, rs.StateUpdate))
        assert update.updates == {"booked": ["19:30", ["Oslo"]]}
        assert (await client.get(f"/runs/{run_id}")).json()["status"] == "completed"


async def answer_question(client: httpx.AsyncClient, run_id: str, request_id: str) -> None:
    url = f"/runs/{run_id}/answers"
    wrong = await client.post(url, json={"request_id": "ask_nope", "value": 1})
    assert wrong.status_code == 404
    assert "ask_nope" in wrong.json()["detail"]
    missing = await client.post(url, json={"request_id": request_id})
    assert missing.status_code == 422
    assert "field 'value'" in missing.json()["detail"]
    answered = await client.post(url, json={"request_id": request_id, "value": "19:30"})
    assert answered.status_code == 202
    assert answered.json() == {"run_id": run_id, "request_id": request_id}
    again = await client.post(url, json={"request_id": request_id, "value": "20:00"})
    assert again.status_code in (404, 409)  # answered already, or already gone on


async def answer_tools(client: httpx.AsyncClient, run_id: str, request_id: str) -> None:
    url = f"/runs/{run_id}/answers"
    shape = await client.post(url, json={"request_id": request_id, "value": "Oslo"})
    assert shape.status_code == 422
    assert "one per tool call" in shape.json()["detail"]
    ok = await client.post(url, json={"request_id": request_id, "value": ["Oslo"]})
    assert ok.status_code == 202


async def test_remote_runs_answer_and_its_refusals() -> None:
    async with live(create_app({"booker": booker()})) as client:
        remote = RemoteRuns(str(client.base_url))
        async with remote:
            run_id = await remote.start("booker", None)
            events: list[rs.Event] = []
            async for event in remote.events(run_id):
                events.append(event)
                if isinstance(event, rs.AwaitClarification):
                    await remote.answer(run_id, event.request_id, "noon")
                    with pytest.raises(RemoteError) as refused:
                        await remote.answer(run_id, event.request_id, "again")
                    assert refused.value.status in (404, 409)
                elif isinstance(event, rs.AwaitExternalTools):
                    await remote.answer(run_id, event.request_id, ["Bergen"])
            with pytest.raises(RemoteError) as unknown:
                await remote.answer("no-such-run", "ask_x", 1)
            assert unknown.value.status == 404
        check_invariants(events)
        terminal(events, rs.Phase.COMPLETED)


async def test_answers_need_the_runs_owner() -> None:
    tokens = {"t-ann": "ann", "t-bob": "bob"}
    async with live(create_app({"booker": booker()}, auth=tokens)) as client:
        ann = {"Authorization": "Bearer t-ann"}
        run_id = await start(client, "booker", headers=ann)
        bob = {"Authorization": "Bearer t-bob"}
        refused = await client.post(
            f"/runs/{run_id}/answers", json={"request_id": "x", "value": 1}, headers=bob
        )
        assert refused.status_code == 404
        await client.post(f"/runs/{run_id}/cancel", headers=ann)
