"""A TCP proxy on loopback that cuts connections part-way through a response.

For resume tests: each of the first connections is closed after a chosen
number of response bytes, as a network or a load balancer would drop it;
later connections pass through. A cut point is either a plain byte count, or
`MidFrame(frame, offset)`: `offset` bytes into the response's `frame`-th SSE
frame, so that a test lands its cuts inside frames whatever the length of the
headers and of the frames before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

__all__ = ["Connection", "Cut", "CuttingProxy", "MidFrame", "cutting_proxy"]


@dataclass(frozen=True)
class MidFrame:
    """`offset` bytes after the start of the response's SSE frame number `frame` (from 0).

    A frame starts at its `id:` line; frames are counted from the start of
    the response body.
    """

    frame: int
    offset: int


Cut = int | MidFrame


@dataclass
class Connection:
    """What the proxy did with one connection."""

    index: int
    cut_at: int | None = None  # response bytes after which it was cut; None: passed through
    sent: int = 0  # response bytes passed to the client
    response: bytearray = field(default_factory=bytearray, repr=False)

    @property
    def cut(self) -> bool:
        return self.cut_at is not None


_FRAME_START = b"\nid: "
_BODY_START = b"\r\n\r\n"


def _position(cut: Cut, response: bytes) -> int | None:
    """Where `cut` falls in a response that begins with `response`; None: not known yet."""
    if isinstance(cut, int):
        return cut
    body = response.find(_BODY_START)
    if body < 0:
        return None
    at = body + 2  # so that an `id:` line right after the headers is found too
    for _ in range(cut.frame + 1):
        found = response.find(_FRAME_START, at)
        if found < 0:
            return None
        at = found + 1  # the start of the frame's `id:` line
    return at + cut.offset


class CuttingProxy:
    """Forwards 127.0.0.1:`port` to a target; cuts connection `i` at `cuts[i]`.

    Attributes:
        connections: every connection accepted, in order.
        errors: what went wrong in the proxy itself (raised by `cutting_proxy`).
    """

    def __init__(self, target_host: str, target_port: int, cuts: Sequence[Cut]) -> None:
        self._target = (target_host, target_port)
        self._cuts = list(cuts)
        self.connections: list[Connection] = []
        self.errors: list[Exception] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Condition()  # notified at each connection and each write
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cuts_made(self) -> list[Connection]:
        return [c for c in self.connections if c.cut]

    async def wait_until(self, predicate: Callable[[list[Connection]], bool]) -> None:
        """Wait until `predicate(connections)` holds, checked at each connection and write."""
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self.connections))

    async def wait_connections(self, n: int) -> None:
        """Wait until the proxy has accepted `n` connections."""
        await self.wait_until(lambda connections: len(connections) >= n)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()  # no new connections
        # Connections still open (a client's keep-alive) end here, before
        # wait_closed(), which waits for them on Python 3.12+.
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The handler owns the connection; aclose() cancels and awaits it.
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except Exception as exc:  # kept for the test: asyncio would only log it
            self.errors.append(exc)
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(len(self.connections))
        async with self._changed:
            self.connections.append(connection)
            self._changed.notify_all()
        cut = self._cuts[connection.index] if connection.index < len(self._cuts) else None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        try:
            async with asyncio.TaskGroup() as tg:
                requests = tg.create_task(_pipe(reader, upstream_writer))
                await self._respond(upstream_reader, writer, cut, connection)
                requests.cancel()
        finally:
            for w in (writer, upstream_writer):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()

    async def _respond(
        self,
        upstream: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        cut: Cut | None,
        connection: Connection,
    ) -> None:
        """Pass the response on, up to the cut if there is one."""
        response = connection.response
        while True:
            try:
                chunk = await upstream.read(65536)
            except ConnectionError:
                chunk = b""
            if not chunk:
                return  # the response ended before any cut
            response += chunk
            limit = None if cut is None else _position(cut, bytes(response))
            upto = len(response) if limit is None else min(limit, len(response))
            if upto > connection.sent:
                client.write(bytes(response[connection.sent : upto]))
                connection.sent = upto
                with contextlib.suppress(ConnectionError):
                    await client.drain()
                async with self._changed:
                    self._changed.notify_all()
            if limit is not None and connection.sent >= limit:
                connection.cut_at = limit
                return


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Requests, client to server; the client's end of sending is passed on too."""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


@asynccontextmanager
async def cutting_proxy(base_url: str, cuts: Sequence[Cut]) -> AsyncIterator[CuttingProxy]:
    """A `CuttingProxy` in front of the server at `base_url` (http://host:port).

    Raises:
        ExceptionGroup: the proxy itself failed on some connection.
    """
    host, _, port = base_url.removeprefix("http://").partition(":")
    proxy = CuttingProxy(host, int(port), cuts)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()
    if proxy.errors:
        raise ExceptionGroup("the cutting proxy failed", proxy.errors)
