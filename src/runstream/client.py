"""Remote runs: start, follow and cancel the runs of a runstream server.

Needs the `client` extra (httpx only): `pip install "runstream[client]"`.

A remote run's events arrive as the same cold `Observable[Event]` a local run
gives, so the same operators and sinks (and `async for`) work on both sides of
the wire. The stream reconnects by itself with `Last-Event-ID` after a dropped
connection: nothing is lost and nothing is repeated.

Example:
    ```python
    from runstream.client import RemoteRuns

    async with RemoteRuns("http://127.0.0.1:8000", token="secret") as runs:
        run_id = await runs.start("researcher", {"question": "why?"})
        await rs.drain(runs.events(run_id).pipe(rs.ops.of_type(rs.AssistantReply)), sink)
    ```
"""

from __future__ import annotations

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        'runstream.client needs the client extra: pip install "runstream[client]"'
    ) from exc

import math
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, TypeGuard
from urllib.parse import quote

import anyio
from reactivex import Observable

from .codec import DecodeError, loads
from .events import ErrorInfo, Event, Phase, Workflow
from .graph import RunFailed
from .ops import Profile
from .sources import from_async_iterable

__all__ = ["RemoteError", "RemoteRuns"]

_MAX_BACKOFF = 5.0
"""The longest pause between two reconnection attempts, in seconds."""

_RETRYABLE = frozenset({408, 425, 429})
"""4xx statuses worth another try; every 5xx is too. Other 4xx fail at once."""

_MAYBE_LOST = (
    "if the run existed, it may have been lost with a restart of the server "
    "(a bus in memory does not outlive its server)"
)
"""Said with a 404 for a run: after a restart, a lost run is indistinguishable from none."""


class RemoteError(Exception):
    """The server refused a request, or could not be reached.

    Attributes:
        status: the HTTP status, or None when no response came (connection
            refused, dropped, timed out).
        detail: the server's `detail` (or what went wrong on the way).
        hint: what the client adds to the message, if anything: a 404 for a
            run says that the run may have been lost with a server restart.
    """

    def __init__(self, status: int | None, detail: str, *, hint: str | None = None) -> None:
        message = f"HTTP {status}: {detail}" if status is not None else detail
        super().__init__(f"{message}; {hint}" if hint else message)
        self.status = status
        self.detail = detail
        self.hint = hint


class RemoteRuns:
    """A client for a runstream server (see `runstream.server.create_app`).

    One connection pool serves every call; close it with `aclose()` or use the
    client as an async context manager.

    Args:
        base_url: where the app is served, e.g. `"http://127.0.0.1:8000"`.
        token: a bearer token, sent with every request when given.
        retries: how many times `events` reconnects after a failed attempt
            before it gives up with `RemoteError`. The count restarts whenever
            an attempt delivers an event; 0 never reconnects.
        backoff: the pause before the first reconnection, in seconds; it
            doubles with each further failure in a row, up to 5 seconds.
        timeout: seconds to wait for a connection or for any bytes of a
            response. An event stream silent for longer (the server sends
            keep-alives every 15 s by default) counts as dropped.

    Example:
        ```python
        async with RemoteRuns("http://127.0.0.1:8000") as runs:
            run_id = await runs.start("researcher", "Is solar cheaper than coal?")
            stats = await rs.drain(runs.events(run_id), rs.ConsoleSink())
        ```
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        retries: int = 5,
        backoff: float = 0.2,
        timeout: float = 30.0,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if not (backoff >= 0 and math.isfinite(backoff)):
            raise ValueError(f"backoff must be a finite number >= 0, got {backoff}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> RemoteRuns:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; event streams still open fail."""
        await self._client.aclose()

    # --- requests -----------------------------------------------------------------

    async def start(self, graph: str, input: Any, thread_id: str | None = None) -> str:
        """Start a run of `graph` on the server and return its run id.

        The run goes on on the server whatever happens to this client; follow
        it with `events`.

        Raises:
            RemoteError: the server refused (404 unknown graph, 422 bad input,
                429 too many runs, 401 bad token, ...) or could not be reached.
        """
        body = await self._call(
            "POST", "/runs", {"graph": graph, "input": input, "thread_id": thread_id}
        )
        run_id = body.get("run_id") if isinstance(body, dict) else None
        if not isinstance(run_id, str):
            raise RemoteError(201, f"the server's answer has no run_id: {body!r}")
        return run_id

    async def cancel(self, run_id: str) -> None:
        """Ask the server to cancel a run; it ends with `Workflow(canceled)`.

        Cancelling a run that has ended already does nothing.

        Raises:
            RemoteError: no such run (404), or the server could not be reached.
        """
        await self._call("POST", f"{_run_path(run_id)}/cancel", run_id=run_id)

    async def answer(self, run_id: str, request_id: str, value: Any) -> None:
        """Answer a run's question (`AwaitClarification`) or tool calls (`AwaitExternalTools`).

        Raises:
            RemoteError: no such run or request (404), answered already (409),
                an answer of the wrong shape (422), or the server could not
                be reached.
        """
        await self._call(
            "POST",
            f"{_run_path(run_id)}/answers",
            {"request_id": request_id, "value": value},
            run_id=run_id,
        )

    async def status(self, run_id: str) -> dict[str, Any]:
        """The server's record of a run: `{"run_id", "graph", "status", "events"}`.

        `status` is `"running"`, `"completed"`, `"failed"` or `"canceled"`;
        `events` is how many events the run has emitted so far.

        Raises:
            RemoteError: no such run (404), or the server could not be reached.
        """
        body = await self._call("GET", _run_path(run_id), run_id=run_id)
        if not isinstance(body, dict):
            raise RemoteError(200, f"expected a JSON object, got {body!r}")
        return body

    async def _call(
        self, method: str, path: str, body: Any = None, *, run_id: str | None = None
    ) -> Any:
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise RemoteError(None, f"{method} {self.base_url}{path}: {_describe(exc)}") from exc
        if response.is_error:
            raise _refusal(response, run_id)
        try:
            return response.json()
        except ValueError:
            raise RemoteError(
                response.status_code, f"{method} {path}: the answer is not JSON"
            ) from None

    # --- events -------------------------------------------------------------------

    def events(
        self, run_id: str, after: int | None = None, *, profile: str | Profile | None = None
    ) -> Observable[Event]:
        """The run's events as a cold observable, read over Server-Sent Events.

        Each subscription opens its own stream: the run's history first, then
        its live events. After the run's terminal `Workflow` event it
        completes (run completed or canceled) or, as a local run does, errors
        with `RunFailed` (run failed). Started at or past the end of a run
        that has ended (`after` its last `seq`), it completes at once with no
        events. `async for` iterates it, as any runstream stream; breaking
        out of the loop closes the connection. A dropped
        connection, a read timeout or a stream that ends early is resumed with
        `Last-Event-ID`, after a backoff, so every event arrives once and in
        order. Disposing the subscription closes the stream; so does
        `Attachment.cancel()`, which here stops following and completes
        without a terminal event. Either way the run goes on on the server:
        stop it with `cancel`.

        Args:
            run_id: the run, as returned by `start`.
            after: start after this `seq` (None: from the first event).
            profile: a built-in profile (`"user_chat"`, `"agent_debug"`,
                `"metrics"` or the `Profile` itself), applied by the server.

        Errors (through `on_error`): `RunFailed` after a failed run's last
        event; `RemoteError` at once for a refusal
        (401, 404 unknown run, or one lost with a server restart, 410 history
        no longer kept, 422), or after
        `retries` reconnections in a row failed; `DecodeError` for an event
        the codec cannot read.

        Raises:
            ValueError: `profile` is not one of the built-in profiles (raised
                here, at once).
        """
        params: dict[str, str] = {}
        if profile is not None:
            if isinstance(profile, Profile):
                if _builtin(profile.name) != profile:
                    raise ValueError(
                        "the server applies the built-in profiles only; "
                        "apply a custom one here with .pipe(ops.profile(...))"
                    )
                params["profile"] = profile.name
            else:
                Profile.named(profile)  # raises, naming the known profiles
                params["profile"] = profile

        def follow() -> AsyncIterator[Event]:
            return self._follow(run_id, after, params)

        return from_async_iterable(follow)

    async def _follow(
        self, run_id: str, after: int | None, params: dict[str, str]
    ) -> AsyncIterator[Event]:
        """Connect, read frames, dispatch events; reconnect after a failure, with backoff."""
        path = f"{_run_path(run_id)}/events"
        reader = _Reader(run_id, after)
        failures = 0
        while True:
            delivered = reader.delivered
            try:
                async with self._client.stream(
                    "GET", path, params=params, headers=reader.new_connection()
                ) as response:
                    if not await _connected(response, run_id):
                        return  # 204: the run has ended and nothing follows the position
                    async for chunk in response.aiter_bytes():
                        for event in reader.events(chunk):
                            yield event
                            if _ends_root_run(event):
                                _raise_if_failed(event)
                                return
                retry = _Retry("the stream ended before the run's last event")
            except _Retry as exc:
                retry = exc
            except httpx.TransportError as exc:
                retry = _Retry(_describe(exc))
            failures = 1 if reader.delivered > delivered else failures + 1
            if failures > self.retries:
                attempts = "1 failed attempt" if failures == 1 else f"{failures} failed attempts"
                raise RemoteError(
                    retry.status,
                    f"events of run {run_id}: gave up after {attempts} in a row; "
                    f"last: {retry.problem}",
                )
            delay = min(self.backoff * 2 ** (failures - 1), _MAX_BACKOFF)
            await anyio.sleep(max(delay, min(retry.pause, _MAX_BACKOFF)))


class _Retry(Exception):
    """An attempt to read a run's events failed in a way worth another try."""

    def __init__(self, problem: str, status: int | None = None, pause: float = 0.0) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status
        self.pause = pause  # what the server's Retry-After asks for


async def _connected(response: httpx.Response, run_id: str) -> bool:
    """Whether a response to `GET /runs/{id}/events` is an event stream to read.

    False for 204 (the run has ended and nothing follows the position asked for).

    Raises:
        _Retry: a status worth another try (5xx, 408, 425, 429).
        RemoteError: any other refusal, or a 200 that is not an event stream.
    """
    status = response.status_code
    if status == 204:
        return False
    if status != 200:
        await response.aread()
        if not _retryable(status):
            raise _refusal(response, run_id)
        raise _Retry(f"HTTP {status}: {_detail(response)}", status, _retry_after(response))
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/event-stream"):
        raise RemoteError(status, f"expected an event stream, got {kind or 'no content type'}")
    return True


class _Reader:
    """One run's events from its SSE frames, each once and in order, across reconnections.

    Remembers the last `seq` delivered (events up to it that a server sends
    again are dropped) and the frame id to resume after (`Last-Event-ID`).
    """

    __slots__ = ("_parser", "delivered", "last_seq", "resume", "run_id")

    def __init__(self, run_id: str, after: int | None) -> None:
        self.run_id = run_id
        self.last_seq = -1 if after is None else after
        self.resume = None if after is None else str(after)
        self.delivered = 0
        self._parser = _SSEParser()

    def new_connection(self) -> dict[str, str]:
        """Start reading a new connection (frames start afresh); returns its headers."""
        self._parser = _SSEParser()
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.resume is not None:
            headers["Last-Event-ID"] = self.resume
        return headers

    def events(self, chunk: bytes) -> Iterator[Event]:
        """The new events in `chunk`, decoded one by one as they are taken."""
        for frame_id, data in self._parser.feed(chunk):
            try:
                event = loads(data)
            except DecodeError as exc:
                raise DecodeError(
                    f"run {self.run_id}, the event after seq {self.last_seq}: {exc}"
                ) from None
            if event.seq <= self.last_seq:
                continue  # already delivered before a reconnection
            self.last_seq = event.seq
            self.resume = frame_id if frame_id is not None else str(event.seq)
            self.delivered += 1
            yield event


def _ends_root_run(event: Event) -> TypeGuard[Workflow]:
    return type(event) is Workflow and event.phase.is_terminal and event.run.parent_run_id is None


def _raise_if_failed(event: Workflow) -> None:
    """As a local run does: `RunFailed` (through on_error) after the failed run's last event."""
    if event.phase is Phase.FAILED:
        raise RunFailed(
            event.run_id, event.agent, event.error or ErrorInfo("Error", "the run failed")
        )


class _SSEParser:
    """Splits a Server-Sent Events byte stream into `(id, data)` frames.

    Lines may end with `\\n`, `\\r\\n` or `\\r`, split anywhere between
    chunks; several `data:` lines make one value joined by `\\n`; comments
    (keep-alives), `event:`, `retry:` and unknown fields are skipped, and a
    frame without data is not dispatched.
    """

    __slots__ = ("_cr", "_data", "_id", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._cr = False  # the last chunk ended with "\r": a "\n" next belongs to it
        self._data: list[bytes] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        if not chunk:
            return []
        if self._cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        frames: list[tuple[str | None, bytes]] = []
        for line in lines:
            if not line:
                if self._data:
                    frames.append((self._id, b"\n".join(self._data)))
                    self._data = []
                continue
            if line[0] == 0x3A:  # ":" starts a comment
                continue
            name, colon, value = line.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"id" and b"\0" not in value:
                self._id = value.decode("utf-8", "replace") or None
        return frames


def _builtin(name: str) -> Profile | None:
    try:
        return Profile.named(name)
    except ValueError:
        return None


def _run_path(run_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}"


def _retryable(status: int) -> bool:
    return status >= 500 or status in _RETRYABLE


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        seconds = float(raw)
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _refusal(response: httpx.Response, run_id: str | None) -> RemoteError:
    """The error for a refused request; a 404 for a run may mean a lost run."""
    status, detail = response.status_code, _detail(response)
    maybe_lost = run_id is not None and status == 404 and "restart" not in detail
    return RemoteError(status, detail, hint=_MAYBE_LOST if maybe_lost else None)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail: str = body["detail"]
        return detail
    text = response.text.strip()
    return text[:200] if text else response.reason_phrase or "no detail"


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
