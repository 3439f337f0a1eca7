"""What the HTTP examples share: a server on loopback, and an SSE message reader.

Not an example of its own: `ag_ui_client.py` and `ai_sdk_client.py` import it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # port 0: the kernel picks a free port
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio"))
    started = asyncio.Event()
    startup = server.startup

    async def announce(sockets: list[socket.socket] | None = None) -> None:
        await startup(sockets=sockets)
        started.set()

    server.startup = announce  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiting.cancel()
        task.result()  # it could not start: raise why
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def serve_and_run(app: Any, main: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    """Serve `app` on loopback and run `main` with a client of it."""
    async with serving(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            await main(client)


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """Each SSE message's `id:` and `data:` (both formats send one `data:` line each)."""
    frame_id = data = ""
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            frame_id = line[4:]
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and data:
            yield frame_id, data
            data = ""
