"""Bearer-token auth: 401 without a token, runs isolated per principal, unguessable ids."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest

import runstream as rs
from _support.invariants import check_invariants
from _support.server import (
    emitter,
    frames_of,
    live,
    read_sse,
    read_ws,
    start,
    ticks,
    wait_status,
    ws_refused,
    ws_url,
)
from runstream.server import create_app

pytestmark = pytest.mark.anyio

TOKENS = {"tok-a": "alice", "tok-b": "bob"}
A = {"Authorization": "Bearer tok-a"}
B = {"Authorization": "Bearer tok-b"}


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"detail"}


async def test_no_token_or_a_bad_token_is_401_everywhere() -> None:
    app = create_app({"emitter": emitter(1)}, auth=TOKENS)
    async with live(app) as client:
        run_id = await start(client, "emitter", headers=A)
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": "Bearer"},
            {"Authorization": "Basic tok-a"},
            {"Authorization": "tok-a"},
        ):
            assert_401(await client.post("/runs", json={"graph": "emitter"}, headers=headers))
            assert_401(
                await client.post("/runs/stream", json={"graph": "emitter"}, headers=headers)
            )
            assert_401(await client.get(f"/runs/{run_id}", headers=headers))
            assert_401(await client.get(f"/runs/{run_id}/events", headers=headers))
            assert_401(await client.post(f"/runs/{run_id}/cancel", headers=headers))
            assert_401(await client.get("/graphs", headers=headers))
        assert await wait_status(client, run_id, headers=A) == "completed"


async def test_no_token_is_401_on_the_websocket() -> None:
    app = create_app({"emitter": emitter(1)}, auth=TOKENS)
    async with live(app) as client:
        run_id = await start(client, "emitter", headers=A)
        url = ws_url(client, f"/runs/{run_id}/ws")
        await ws_refused(url, 401)
        await ws_refused(url, 401, {"Authorization": "Bearer nope"})
        assert await wait_status(client, run_id, headers=A) == "completed"


async def test_a_run_is_404_for_another_token_and_visible_to_its_own() -> None:
    app = create_app({"emitter": emitter(5)}, auth=TOKENS)
    async with live(app) as client:
        run_id = await start(client, "emitter", headers=A)
        missing = str(uuid.uuid4())

        def same_as_unknown(foreign: httpx.Response, unknown: httpx.Response) -> None:
            # no existence leak: a foreign run looks exactly like one that does not exist
            assert foreign.status_code == unknown.status_code == 404
            assert foreign.json()["detail"] == unknown.json()["detail"].replace(missing, run_id)

        for method, suffix in (("GET", ""), ("GET", "/events"), ("POST", "/cancel")):
            foreign = await client.request(method, f"/runs/{run_id}{suffix}", headers=B)
            unknown = await client.request(method, f"/runs/{missing}{suffix}", headers=B)
            same_as_unknown(foreign, unknown)

        # bob's cancel did not cancel alice's run; alice sees all of it
        assert await wait_status(client, run_id, headers=A) == "completed"
        status = await client.get(f"/runs/{run_id}", headers=A)
        assert status.json()["status"] == "completed"
        _, events = await read_sse(client, f"/runs/{run_id}/events", headers=A)
        check_invariants(events)
        assert ticks(events) == list(range(5))
        over_ws, code = await read_ws(ws_url(client, f"/runs/{run_id}/ws"), A)
        assert (over_ws, code) == (events, 1000)
        assert (await client.post(f"/runs/{run_id}/cancel", headers=A)).status_code == 202


async def test_a_run_is_404_for_another_token_on_the_websocket() -> None:
    app = create_app({"emitter": emitter(5)}, auth=TOKENS)
    async with live(app) as client:
        run_id = await start(client, "emitter", headers=A)
        await ws_refused(ws_url(client, f"/runs/{run_id}/ws"), 404, B)
        assert await wait_status(client, run_id, headers=A) == "completed"


async def test_a_streamed_run_belongs_to_its_token() -> None:
    app = create_app({"emitter": emitter(5)}, auth=TOKENS)
    async with live(app) as client:
        async with client.stream(
            "POST", "/runs/stream", json={"graph": "emitter"}, headers=A
        ) as stream:
            run_id = stream.headers["x-run-id"]
            frames = [f async for f in frames_of(stream)]
        assert len(frames) == 5 + 3
        assert (await client.get(f"/runs/{run_id}", headers=B)).status_code == 404
        assert (await client.get(f"/runs/{run_id}", headers=A)).status_code == 200


def sync_auth(token: str) -> str | None:
    return {"s-1": "carol", "s-2": "dave"}.get(token)


async def async_auth(token: str) -> str | None:
    return {"s-1": "carol", "s-2": "dave"}.get(token)


@pytest.mark.parametrize("auth", [sync_auth, async_auth], ids=["sync", "async"])
async def test_a_callable_auth_works(
    auth: Callable[[str], str | Awaitable[str | None] | None],
) -> None:
    app = create_app({"emitter": emitter(2)}, auth=auth)
    async with live(app) as client:
        carol = {"Authorization": "Bearer s-1"}
        dave = {"Authorization": "Bearer s-2"}
        assert_401(await client.post("/runs", json={"graph": "emitter"}))
        assert_401(await client.post("/runs", json={"graph": "emitter"}, headers=B))
        run_id = await start(client, "emitter", headers=carol)
        assert (await client.get(f"/runs/{run_id}", headers=dave)).status_code == 404
        assert await wait_status(client, run_id, headers=carol) == "completed"


async def test_run_ids_are_random_uuid4() -> None:
    app = create_app({"emitter": emitter(1)})
    async with live(app) as client:
        ids = [await start(client, "emitter") for _ in range(20)]
        async with client.stream("POST", "/runs/stream", json={"graph": "emitter"}) as stream:
            ids.append(stream.headers["x-run-id"])
            await stream.aread()
        assert len(set(ids)) == len(ids)
        for run_id in ids:
            assert len(run_id) == 36
            parsed = uuid.UUID(run_id)
            assert str(parsed) == run_id
            assert parsed.version == 4  # 122 random bits
            assert parsed.variant == uuid.RFC_4122
        # and the events carry that id
        _, events = await read_sse(client, f"/runs/{ids[0]}/events")
        assert {e.run_id for e in events} == {ids[0]}
        assert isinstance(events[-1], rs.Workflow)
        for run_id in ids[:-1]:
            await wait_status(client, run_id)
