"""`create_app`: runs over HTTP, Server-Sent Events and WebSocket."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..buses import Entry, HistoryGone, MemoryBus, RunBus, sse_frames
from ..codec import DecodeError
from ..graph import AlreadyAnswered, CompiledGraph, UnknownRequest
from ..ops import Profile, event_filter
from ..protocols import FrameId, parse_frame_id
from ..runtime import Runtime
from ._formats import Translations, check_format, format_headers, protocol_left
from ._page import chat_page
from ._ui import ag_ui_input, ai_sdk_input

__all__ = ["Limits", "create_app", "stop_runs"]

_log = logging.getLogger("runstream.server")

Auth = Mapping[str, str] | Callable[[str], "str | Awaitable[str | None] | None"] | None


@attrs.frozen
class Limits:
    """What one server accepts.

    Attributes:
        max_body_bytes: request bodies above this get 413.
        max_running: runs going on at once; more get 429 with `Retry-After`.
        retry_after: seconds suggested by a 429.
        heartbeat: idle seconds between SSE keep-alive comments.
    """

    max_body_bytes: int = 1_000_000
    max_running: int = 64
    retry_after: int = 1
    heartbeat: float = 15.0


class _Server:
    def __init__(self, runtime: Runtime, auth: Auth, limits: Limits) -> None:
        self.runtime = runtime
        self.bus: RunBus = runtime.bus
        self.graphs = runtime.graphs
        self.auth = auth
        self.limits = limits
        self.translations = Translations()
        # (graph, chat id, principal) -> the chat's latest run, for useChat's resume.
        self.chats: dict[tuple[str, str, str | None], str] = {}
        # run id -> the ids its client gave it, for its protocol's frames: AG-UI's
        # threadId and runId, the AI SDK message it continues (useChat's messageId).
        self.names: dict[str, dict[str, str]] = {}

    # --- who is asking ------------------------------------------------------------

    async def principal(self, headers: Mapping[str, str]) -> str | None:
        if self.auth is None:
            return None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Unauthorized()
        if isinstance(self.auth, Mapping):
            who = self.auth.get(token)
        else:
            found = self.auth(token)
            who = await found if inspect.isawaitable(found) else found
        if who is None:
            raise _Unauthorized()
        return who

    async def visible_run(self, run_id: str, who: str | None) -> Any:
        record = await self.bus.record(run_id)
        if record is None or record.owner != who:
            raise HTTPException(404, _unknown_run(run_id, self.bus))
        return record

    # --- starting runs ------------------------------------------------------------

    async def start(
        self, request: Request, who: str | None, body: dict[str, Any] | None = None
    ) -> tuple[str, str | None]:
        """Start the run a request asks for (its JSON body, read here unless given)."""
        if body is None:
            body = await _json_body(request, self.limits.max_body_bytes)
        _check_text(body)
        graph_name = body.get("graph")
        if not isinstance(graph_name, str):
            raise HTTPException(422, "field 'graph': required, a string naming a graph")
        thread_id = body.get("thread_id")
        if thread_id is not None and not isinstance(thread_id, str):
            raise HTTPException(422, "field 'thread_id': must be a string or null")
        if graph_name not in self.graphs:
            known = ", ".join(sorted(self.graphs)) or "none"
            raise HTTPException(404, f"unknown graph {graph_name!r}; graphs: {known}")
        if self.runtime.role != "api" and self.runtime.executing >= self.limits.max_running:
            raise HTTPException(
                429,
                f"{self.limits.max_running} runs are going on; try again shortly",
                headers={"Retry-After": str(self.limits.retry_after)},
            )
        try:
            run_id = await self.runtime.start(
                graph_name, body.get("input"), thread_id=thread_id, owner=who
            )
        except (TypeError, KeyError, ValueError) as exc:
            raise HTTPException(422, f"field 'input': {_message(exc)}") from None
        except RecursionError:
            raise HTTPException(422, "field 'input': nested too deeply") from None
        return run_id, thread_id

    # --- reading runs -------------------------------------------------------------

    def name(self, run: str, **names: str) -> None:
        """Note the ids a client gave run `run`; the oldest are forgotten past `_CHATS_KEPT`."""
        self.names[run] = names
        while len(self.names) > _CHATS_KEPT:
            del self.names[next(iter(self.names))]

    def remember_chat(self, key: tuple[str, str, str | None], run_id: str) -> None:
        """Note a chat's latest run; the oldest chats are forgotten past `_CHATS_KEPT`."""
        self.chats.pop(key, None)
        self.chats[key] = run_id
        while len(self.chats) > _CHATS_KEPT:
            del self.chats[next(iter(self.chats))]

    def stream(
        self, run_id: str, format: str, profile: Profile | None, *, cancel_on_leave: bool
    ) -> StreamingResponse:
        """A response streaming a run just started; leaving it may cancel the run."""
        if format == "runstream":
            frames = self.frames(run_id, None, profile)
        else:
            frames = self.protocol(run_id, format, None, profile)

        async def body() -> AsyncIterator[bytes]:
            finished = False
            try:
                async for frame in frames:
                    yield frame
                finished = True
            finally:
                if not finished and cancel_on_leave:
                    # The client went away: stop its run, wherever it executes.
                    # Shielded: this runs as the response is being cancelled, and a
                    # run on a worker is stopped by a request over the bus (an await).
                    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                        with contextlib.suppress(Exception):
                            await self.runtime.cancel(run_id)

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={**_SSE_HEADERS, **format_headers(format), "X-Run-Id": run_id},
        )

    def protocol(
        self, run_id: str, format: str, after: FrameId | None, profile: Profile | None
    ) -> AsyncGenerator[bytes, None]:
        """The run in a protocol format after frame `after`, as SSE writes."""
        return self.translations.frames(
            self.bus,
            run_id,
            format,
            after,
            self.show(profile),
            None if profile is None else profile.name,
            self.limits.heartbeat,
            self.names.get(run_id),
        )

    async def protocol_left(
        self, run_id: str, format: str, after: FrameId, profile: Profile | None
    ) -> bool:
        """Whether an ended run has frames after `after` in `format`."""
        frames = self.protocol(run_id, format, after, profile)
        return await protocol_left(frames)

    @staticmethod
    def show(profile: Profile | None) -> Callable[[Any], Any] | None:
        """What a profile keeps of each event (None: everything, unchanged)."""
        return None if profile is None or profile.keeps_everything else event_filter(profile)

    def frames(
        self, run_id: str, after: int | None, profile: Profile | None
    ) -> AsyncIterator[bytes]:
        show = self.show(profile)
        heartbeat = self.limits.heartbeat

        async def body() -> AsyncIterator[bytes]:
            # The reconnection delay goes in the same block as the first event:
            # sent alone, some clients (httpx-sse) hand it out as an empty message.
            retry = _RETRY
            try:
                async for batch in self.bus.read(run_id, after, heartbeat=heartbeat):
                    if not batch:
                        yield b": keep-alive\n\n"
                        continue
                    # One write per batch, not one per event: a client catching up,
                    # or many clients at once, cost far fewer sends. Frames are built
                    # once per entry, and joined once per batch that readers share.
                    for part in _writes(batch):
                        if show is None:
                            chunk = sse_frames(part)
                        else:
                            chunk = b"".join([_sse(e, show) for e in part])
                        if not chunk:
                            continue
                        if retry:
                            chunk, retry = retry + chunk, b""
                        yield chunk
            except HistoryGone:
                return  # overtaken by eviction: end cleanly; the resume gets 410
            except DecodeError as exc:  # written to the bus by someone else
                _log.warning("run %s: ending its stream at an unreadable entry: %s", run_id, exc)
                return

        return body()


class _Unauthorized(HTTPException):
    def __init__(self) -> None:
        super().__init__(401, "missing or unknown bearer token", {"WWW-Authenticate": "Bearer"})


def _writes(batch: Sequence[Entry]) -> Sequence[Sequence[Entry]]:
    """A batch cut into the entries of one write each (a bus may hand out long batches)."""
    if len(batch) <= _FRAMES_PER_WRITE:
        return (batch,)
    return [batch[i : i + _FRAMES_PER_WRITE] for i in range(0, len(batch), _FRAMES_PER_WRITE)]


def _shown(entry: Entry, show: Callable[[Any], Any]) -> Entry | None:
    """The entry as a profile's `show` sees it: itself, None (hidden), or a new entry."""
    shown = show(entry.event)
    if shown is entry.event:
        return entry  # kept unchanged: its encoded forms are shared
    if shown is None:
        return None
    return Entry(shown)  # changed for this profile (tool data stripped): encoded anew


def _sse(entry: Entry, show: Callable[[Any], Any]) -> bytes:
    """The entry's SSE frame as `show` sees it; empty when it hides the event."""
    shown = _shown(entry, show)
    return b"" if shown is None else shown.sse


async def _send_run(
    websocket: WebSocket,
    server: _Server,
    run_id: str,
    after: int | None,
    show: Callable[[Any], Any] | None,
) -> bool:
    """Send the run's events as text messages; False if the client went away.

    A second task listens for the client's disconnect meanwhile: a run that
    says nothing for a long while must not keep a handler (and its reader)
    alive for a client that is gone.
    """
    gone = False
    async with anyio.create_task_group() as tasks:

        async def watch() -> None:
            nonlocal gone
            with contextlib.suppress(Exception):  # any receive failure means gone too
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass  # a client has nothing to say on this route
            gone = True
            tasks.cancel_scope.cancel()

        tasks.start_soon(watch)
        try:
            async for batch in server.bus.read(run_id, after, heartbeat=server.limits.heartbeat):
                for entry in batch:
                    shown = entry if show is None else _shown(entry, show)
                    if shown is not None:
                        await websocket.send_text(shown.data.decode())
        except HistoryGone as exc:
            await websocket.close(code=4410, reason=str(exc)[:120])
            gone = True
        except (WebSocketDisconnect, OSError):
            gone = True
        tasks.cancel_scope.cancel()
    return not gone


def _unknown_run(run_id: str, bus: RunBus) -> str:
    detail = f"unknown run {run_id!r}"
    if isinstance(bus, MemoryBus):
        detail += (
            "; if it existed, it may have been lost with a restart of this server, "
            "which keeps runs in memory"
        )
    return detail


def _check_text(body: Any) -> None:
    """Refuse (422) a body holding text UTF-8 cannot carry (a lone surrogate).

    Checked before anything starts: such text would fail later, in the
    response or in the run's events, after the run had begun. Iterative, so
    any depth json.loads accepted is fine here.
    """
    stack: list[tuple[str, Any]] = [("body", body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode()
                except UnicodeEncodeError:
                    where = path.encode("utf-8", "backslashreplace").decode()  # printable
                    raise HTTPException(
                        422, f"field '{where}': text holds a lone surrogate ({_BAD_TEXT})"
                    ) from None
        elif isinstance(value, dict):
            for key, item in value.items():
                where = key if path == "body" else f"{path}.{key}"
                stack.append((where, key))
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))


_BAD_TEXT = "not valid Unicode text"
_RETRY = b"retry: 1000\n"


def _message(exc: BaseException) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"request body over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Gone before its body ended: nobody will read this answer, and it is
        # not a server error worth a traceback in the log.
        raise HTTPException(400, "the client disconnected before the body ended") from None
    try:
        body = json.loads(b"".join(chunks) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(422, "body: not valid JSON") from None
    except RecursionError:
        raise HTTPException(422, "body: JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "body: expected a JSON object")
    return body


def _position(request: Request | WebSocket) -> FrameId | None:
    """The frame a client resumes after: `Last-Event-ID` or `?after=`, `12` or `12.3`."""
    raw = request.headers.get("last-event-id") or request.query_params.get("after")
    if raw is None or raw == "":
        return None
    try:
        return parse_frame_id(raw)
    except ValueError as exc:
        raise HTTPException(422, f"after / Last-Event-ID: {exc}") from None


def _after(request: Request | WebSocket) -> int | None:
    """The `seq` a client resumes after (a frame id's part counts in protocol formats only)."""
    position = _position(request)
    return None if position is None else position[0]


def _profile(request: Request | WebSocket) -> Profile | None:
    name = request.query_params.get("profile")
    if name is None:
        return None
    try:
        return Profile.named(name)
    except ValueError as exc:
        raise HTTPException(422, f"profile: {exc}") from None


_FRAMES_PER_WRITE = 64
_CHATS_KEPT = 10_000  # chats whose latest run a useChat client can reconnect to
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def create_app(
    graphs: Mapping[str, CompiledGraph] | Runtime,
    *,
    bus: RunBus | str | None = None,
    auth: Auth = None,
    limits: Limits | None = None,
    cors_origins: list[str] | None = None,
) -> Starlette:
    """A Starlette app that runs `graphs` and streams their events.

    Routes: `POST /runs`, `GET /runs/{run_id}/events` (SSE; `?format=`
    `runstream`, `ag-ui` or `ai-sdk`), `GET /runs/{run_id}/ws` (WebSocket),
    `POST /runs/stream`, `POST /runs/{run_id}/cancel`, `POST
    /runs/{run_id}/answers`, `GET /runs/{run_id}`,
    `GET /graphs`, `POST /ag-ui/{graph}` (AG-UI), `POST /ai-sdk/{graph}` and
    `GET /ai-sdk/{graph}/{chat_id}/stream` (the AI SDK's `useChat`), and
    `GET /` (a chat page). Errors are JSON `{"detail": ...}`.

    Args:
        graphs: the graphs to serve, by name (run by a `Runtime` on `bus`), or
            a `Runtime`. The app enters the runtime in its lifespan (connects
            to the bus; with role `all`, executes runs) unless it is entered
            already, and stops the runs executing here on shutdown.
        bus: where runs' events are kept when `graphs` is a mapping: a bus or
            its URL; an in-process `MemoryBus` by default.
        auth: None (open), a mapping of bearer token to principal, or a
            function (sync or async) from a token to a principal or None. A run
            is visible only to the principal that started it.
        limits: body size, concurrent runs, keep-alive interval.
        cors_origins: origins allowed by CORS; CORS is off when None.

    Raises:
        TypeError: a value of `graphs` is not a `CompiledGraph`, or `bus` is
            given with a `Runtime`.
        ValueError: a bad bus URL.
    """
    if isinstance(graphs, Runtime):
        if bus is not None:
            raise TypeError("pass bus= to the Runtime, not to create_app, when giving a Runtime")
        runtime = graphs
    else:
        runtime = Runtime(graphs, bus=bus or MemoryBus())
    server = _Server(runtime, auth, limits or Limits())

    async def start_run(request: Request) -> Response:
        who = await server.principal(request.headers)
        run_id, thread_id = await server.start(request, who)
        return JSONResponse(
            {
                "run_id": run_id,
                "thread_id": thread_id,
                "events_url": str(request.url_for("events", run_id=run_id)),
            },
            status_code=201,
        )

    async def events(request: Request) -> Response:
        who = await server.principal(request.headers)
        run_id = request.path_params["run_id"]
        record = await server.visible_run(run_id, who)
        position, profile = _position(request), _profile(request)
        format = check_format(request.query_params.get("format"))
        headers = {**_SSE_HEADERS, **format_headers(format)}
        after = None if position is None else position[0]
        if format != "runstream":
            # Protocol frames are translated from the run's first event.
            if record.oldest > 0:
                raise HTTPException(
                    410,
                    f"events of run {run_id} before seq {record.oldest} are no longer kept; "
                    f"the {format} format needs the whole run",
                )
            if (
                record.finished
                and position is not None
                and position[0] >= record.events - 1
                and not await server.protocol_left(run_id, format, position, profile)
            ):
                return Response(status_code=204, headers=headers)
            if request.method == "HEAD":
                return Response(media_type="text/event-stream", headers=headers)
            body = server.protocol(run_id, format, position, profile)
            return StreamingResponse(body, media_type="text/event-stream", headers=headers)
        if record.finished and after is not None and after >= record.events - 1:
            # A finished run with nothing left: 204 tells an EventSource to stop.
            return Response(status_code=204, headers=headers)
        if (-1 if after is None else after) + 1 < record.oldest:
            raise HTTPException(
                410, f"events of run {run_id} before seq {record.oldest} are no longer kept"
            )
        if request.method == "HEAD":
            # The headers a GET would get, and no body: do not follow the run.
            return Response(media_type="text/event-stream", headers=headers)
        return StreamingResponse(
            server.frames(run_id, after, profile),
            media_type="text/event-stream",
            headers=headers,
        )

    async def start_and_stream(request: Request) -> Response:
        who = await server.principal(request.headers)
        profile = _profile(request)
        body_json = await _json_body(request, server.limits.max_body_bytes)
        format = check_format(body_json.get("format", request.query_params.get("format")))
        run_id, _ = await server.start(request, who, body_json)
        return server.stream(run_id, format, profile, cancel_on_leave=True)

    async def ag_ui_run(request: Request) -> Response:
        who = await server.principal(request.headers)
        body_json = await _json_body(request, server.limits.max_body_bytes)
        agent_input, thread_id = ag_ui_input(body_json)
        start = {
            "graph": request.path_params["graph"],
            "input": agent_input,
            "thread_id": thread_id,
        }
        run_id, _ = await server.start(request, who, start)
        server.name(run_id, thread_id=thread_id, run_id=body_json["runId"])  # echoed back
        return server.stream(run_id, "ag-ui", None, cancel_on_leave=True)

    async def ai_sdk_chat(request: Request) -> Response:
        who = await server.principal(request.headers)
        body_json = await _json_body(request, server.limits.max_body_bytes)
        agent_input, chat_id = ai_sdk_input(body_json)
        graph = request.path_params["graph"]
        start = {"graph": graph, "input": agent_input, "thread_id": chat_id}
        run_id, _ = await server.start(request, who, start)
        continued = body_json.get("messageId")
        if isinstance(continued, str) and continued:
            server.name(run_id, message_id=continued)  # a continuation writes that message
        server.remember_chat((graph, chat_id, who), run_id)
        # Leaving does not stop the run: useChat reconnects to its stream.
        return server.stream(run_id, "ai-sdk", None, cancel_on_leave=False)

    async def ai_sdk_resume(request: Request) -> Response:
        who = await server.principal(request.headers)
        graph, chat_id = request.path_params["graph"], request.path_params["chat_id"]
        run_id = server.chats.get((graph, chat_id, who))
        record = None if run_id is None else await server.bus.record(run_id)
        position = _position(request)
        if record is None or (record.finished and position is None):
            return Response(status_code=204, headers=_SSE_HEADERS)  # no active stream
        assert run_id is not None
        if record.oldest > 0:
            raise HTTPException(
                410, f"events of run {run_id} before seq {record.oldest} are no longer kept"
            )
        if (
            record.finished
            and position is not None
            and not await server.protocol_left(run_id, "ai-sdk", position, None)
        ):
            return Response(status_code=204, headers=_SSE_HEADERS)
        body = server.protocol(run_id, "ai-sdk", position, None)
        headers = {**_SSE_HEADERS, **format_headers("ai-sdk"), "X-Run-Id": run_id}
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)

    async def cancel_run(request: Request) -> Response:
        who = await server.principal(request.headers)
        run_id = request.path_params["run_id"]
        record = await server.visible_run(run_id, who)
        await server.runtime.cancel(run_id)
        return JSONResponse({"run_id": run_id, "status": record.status}, status_code=202)

    async def answer_run(request: Request) -> Response:
        who = await server.principal(request.headers)
        run_id = request.path_params["run_id"]
        await server.visible_run(run_id, who)
        body = await _json_body(request, server.limits.max_body_bytes)
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise HTTPException(422, "field 'request_id': required, a non-empty string")
        if "value" not in body:
            raise HTTPException(422, "field 'value': required, the answer (JSON)")
        try:
            await server.runtime.answer(run_id, request_id, body["value"])
        except UnknownRequest as exc:
            raise HTTPException(404, str(exc)) from None
        except AlreadyAnswered as exc:
            raise HTTPException(409, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(422, f"field 'value': {exc}") from None
        except NotImplementedError as exc:
            raise HTTPException(501, str(exc)) from None
        return JSONResponse({"run_id": run_id, "request_id": request_id}, status_code=202)

    async def run_status(request: Request) -> Response:
        who = await server.principal(request.headers)
        record = await server.visible_run(request.path_params["run_id"], who)
        return JSONResponse(
            {
                "run_id": record.run_id,
                "graph": record.graph,
                "status": record.status,
                "events": record.events,
                "thread_id": record.thread_id,
                "oldest": record.oldest,
            }
        )

    async def list_graphs(request: Request) -> Response:
        await server.principal(request.headers)
        return JSONResponse({"graphs": sorted(server.graphs)})

    async def page(request: Request) -> Response:
        return HTMLResponse(chat_page())

    async def websocket_events(websocket: WebSocket) -> None:
        try:
            who = await server.principal(websocket.headers)
            run_id = websocket.path_params["run_id"]
            await server.visible_run(run_id, who)
            after, profile = _after(websocket), _profile(websocket)
        except HTTPException as exc:
            # Refuse the handshake with the same status and JSON as the HTTP routes
            # (the WebSocket denial response extension); close otherwise.
            if "websocket.http.response" in websocket.scope.get("extensions", {}):
                await websocket.send_denial_response(
                    JSONResponse(
                        {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
                    )
                )
            else:
                await websocket.close(code=4000 + exc.status_code, reason=exc.detail)
            return
        show = None if profile is None or profile.keeps_everything else event_filter(profile)
        record = await server.bus.record(run_id)
        if record is not None and (-1 if after is None else after) + 1 < record.oldest:
            await websocket.send_denial_response(
                JSONResponse({"detail": f"events before seq {record.oldest} are gone"}, 410)
            )
            return
        await websocket.accept()
        if await _send_run(websocket, server, run_id, after, show):
            await websocket.close(code=1000)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if not runtime.entered:
                await stack.enter_async_context(runtime)
            yield
            await runtime.stop_runs()

    middleware = []
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
                expose_headers=["X-Run-Id"],
            )
        )
    app = Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/graphs", list_graphs, methods=["GET"]),
            Route("/runs", start_run, methods=["POST"]),
            Route("/runs/stream", start_and_stream, methods=["POST"]),
            Route("/runs/{run_id}", run_status, methods=["GET"]),
            Route("/runs/{run_id}/events", events, methods=["GET"], name="events"),
            Route("/runs/{run_id}/cancel", cancel_run, methods=["POST"]),
            Route("/runs/{run_id}/answers", answer_run, methods=["POST"]),
            Route("/ag-ui/{graph}", ag_ui_run, methods=["POST"]),
            Route("/ai-sdk/{graph}", ai_sdk_chat, methods=["POST"]),
            Route("/ai-sdk/{graph}/{chat_id}/stream", ai_sdk_resume, methods=["GET"]),
            WebSocketRoute("/runs/{run_id}/ws", websocket_events),
        ],
        exception_handlers={HTTPException: http_error},
        middleware=middleware,
        lifespan=lifespan,
    )
    setattr(app.state, _STATE, server)
    return app


async def stop_runs(app: object) -> None:
    """Cancel every run `app` (made by `create_app`) is executing; return once they ended.

    Each open event stream of those runs ends with the run's
    `Workflow(canceled)`. uvicorn waits for open responses before it runs the
    app's shutdown, so call this first when stopping a server with live runs
    (`runstream serve` does, on Ctrl-C); the app's shutdown does it too.

    Raises:
        TypeError: `app` was not made by `create_app`.
    """
    server = getattr(getattr(app, "state", None), _STATE, None)
    if not isinstance(server, _Server):
        raise TypeError(f"stop_runs needs an app made by create_app, got {app!r}")
    await server.runtime.stop_runs()


_STATE = "runstream"
