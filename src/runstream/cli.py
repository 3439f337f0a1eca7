"""The `runstream` command: run, serve, follow and replay graphs' event streams.

```text
runstream demo [--delay SECONDS] [--model NAME [--base-url URL]] [--jsonl FILE]
runstream run MOD:ATTR [--input JSON] [--thread-id ID] [--profile P] [--jsonl FILE]
runstream serve MOD:ATTR | --demo [--host HOST] [--port PORT] [--bus URL] [--role all|api]
    [--max-running N]
runstream worker MOD:ATTR | --demo --bus URL [--concurrency N] [--lease SECONDS]
runstream tail URL [--token TOKEN] [--profile P] [--jsonl FILE]
runstream replay FILE.jsonl [--speed X] [--profile P]
```

`serve` needs the server extra (`pip install "runstream[server]"`), `tail`
the client extra (`pip install "runstream[client]"`). Exit status: 0 when the
run completed (or the server stopped), 1 when it failed or was canceled (or
`tail` lost the server), 2 for a usage error, 130 after Ctrl-C. Every error is
one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import math
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from .events import Event, Phase

if TYPE_CHECKING:
    from reactivex import Observable

    from .graph import CompiledGraph

__all__ = ["main"]

DEMO_QUESTION = "Is solar power now cheaper than coal?"

_SERVER_EXTRA = 'needs the server extra: pip install "runstream[server]"'
_CLIENT_EXTRA = 'needs the client extra: pip install "runstream[client]"'
_MAX_PAUSE = 2.0
"""`replay --speed`: the longest pause between two events, in seconds."""


class _UsageError(Exception):
    """A problem with what the user typed: reported in one line, exit 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `runstream` command line with `argv` (default: `sys.argv[1:]`).

    Returns the exit status instead of exiting, so it can be called in-process.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        code: int = args.handler(args)
    except _UsageError as exc:
        print(f"runstream: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before a run started (a run's own Ctrl-C is handled)
        print("runstream: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a command line answers in one line, not a traceback
        print(f"runstream: error: {_one_line(_describe(exc))}", file=sys.stderr)
        return 1
    return code


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# --- arguments ------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runstream",
        description="Run agents and graphs and watch their event streams live.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="run the built-in research agent (offline, no key)",
        description="Run a built-in research agent (scripted model, two parallel tools, "
        "a child agent) and render its events live. Needs no key and no network.",
    )
    demo.add_argument(
        "--delay",
        type=float,
        default=0.03,
        metavar="SECONDS",
        help="pause between streamed chunks (default: %(default)s)",
    )
    demo.add_argument(
        "--model",
        metavar="NAME",
        help="run the agent on a real model of an OpenAI-compatible server instead of "
        "the script (needs the openai extra; the key comes from OPENAI_API_KEY)",
    )
    demo.add_argument(
        "--base-url",
        metavar="URL",
        help="with --model: the server, e.g. http://127.0.0.1:11434/v1 "
        "(default: OPENAI_BASE_URL, else OpenAI)",
    )
    _common_options(demo)
    demo.set_defaults(handler=_cmd_demo)

    run = commands.add_parser(
        "run",
        help="run a compiled graph from your code",
        description="Import MOD, take ATTR (a CompiledGraph, or a function returning one) "
        "and run it, rendering its events live. The current directory is importable.",
    )
    run.add_argument("target", metavar="MOD:ATTR", help="e.g. myproject.agents:app")
    run.add_argument(
        "--input",
        default="{}",
        metavar="JSON",
        help="the run's input as JSON (default: {}); a JSON string such as '\"hello\"' "
        "is passed as a plain string, which agents take as the user's message",
    )
    run.add_argument("--thread-id", metavar="ID", help="conversation the run belongs to")
    _common_options(run)
    run.set_defaults(handler=_cmd_run)

    serve = commands.add_parser(
        "serve",
        help="serve graphs over HTTP, SSE and WebSocket",
        description="Serve graphs over HTTP: start runs with POST /runs, follow them over "
        "SSE or WebSocket, or in a browser at the server's address. MOD:ATTR is a "
        "CompiledGraph (served under its name), a mapping of names to graphs, or a "
        "function returning either. Needs the server extra.",
    )
    serve.add_argument("target", nargs="?", metavar="MOD:ATTR", help="e.g. myproject.agents:graphs")
    serve.add_argument(
        "--demo", action="store_true", help="serve the built-in research agent as 'demo'"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--delay",
        type=float,
        default=0.03,
        metavar="SECONDS",
        help="with --demo: pause between streamed chunks (default: %(default)s)",
    )
    serve.add_argument(
        "--bus",
        default="memory://",
        metavar="URL",
        help="where runs are kept: memory:// (this process only, the default), "
        "redis://HOST:PORT/DB or nats://HOST:PORT (shared by every process on it)",
    )
    serve.add_argument(
        "--role",
        choices=("all", "api"),
        default="all",
        help="all: execute runs here too (default); api: queue them for workers "
        "(runstream worker) on the same --bus",
    )
    serve.add_argument(
        "--max-running",
        type=int,
        default=64,
        metavar="N",
        help="with --role all: runs executed here at once; POST /runs answers 429 "
        "beyond (default: %(default)s)",
    )
    serve.set_defaults(handler=_cmd_serve)

    worker = commands.add_parser(
        "worker",
        help="execute runs queued on a shared bus",
        description="Execute the runs that API processes (runstream serve --role api) queue "
        "on a Redis or NATS bus, writing their events back to it. Ctrl-C or SIGTERM stops "
        "it cleanly: the runs it executes end with Workflow(canceled), none is left "
        "without an end.",
    )
    worker.add_argument(
        "target", nargs="?", metavar="MOD:ATTR", help="e.g. myproject.agents:graphs"
    )
    worker.add_argument(
        "--demo", action="store_true", help="execute the built-in research agent as 'demo'"
    )
    worker.add_argument(
        "--bus", required=True, metavar="URL", help="redis://HOST:PORT/DB or nats://HOST:PORT"
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=64,
        metavar="N",
        help="runs executed at once (default: %(default)s)",
    )
    worker.add_argument(
        "--lease",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how soon another process ends a run of a worker that died (default: %(default)s)",
    )
    worker.add_argument(
        "--delay",
        type=float,
        default=0.03,
        metavar="SECONDS",
        help="with --demo: pause between streamed chunks (default: %(default)s)",
    )
    worker.set_defaults(handler=_cmd_worker)

    tail = commands.add_parser(
        "tail",
        help="follow a run on a server, live",
        description="Follow a run on a runstream server and render its events live, from "
        "its first event to its end. A dropped connection is resumed where it stopped. "
        "The run itself is not affected: Ctrl-C stops watching only. Started with "
        "?after=SEQ at or past the end of a run that has ended, it shows nothing and "
        "exits with the run's outcome. Needs the client extra.",
    )
    tail.add_argument(
        "url",
        metavar="URL",
        help="the run's events URL, as POST /runs returns it: http://HOST:PORT/runs/RUN_ID/events",
    )
    tail.add_argument(
        "--token", help="bearer token for a server with auth (default: $RUNSTREAM_TOKEN)"
    )
    _common_options(tail)
    tail.set_defaults(handler=_cmd_tail)

    replay = commands.add_parser(
        "replay",
        help="render a recorded JSONL file",
        description="Render the events recorded in a JSONL file (runstream run --jsonl, "
        "JsonlSink) as if they were live.",
    )
    replay.add_argument("file", metavar="FILE.jsonl", help="the recording")
    replay.add_argument(
        "--speed",
        type=float,
        default=0.0,
        metavar="X",
        help="0: as fast as possible (default); otherwise replay at X times the recorded "
        f"pace (2 = twice as fast), pausing at most {_MAX_PAUSE:g}s between two events",
    )
    _common_options(replay)
    replay.set_defaults(handler=_cmd_replay)
    return parser


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jsonl",
        metavar="FILE",
        help="also write the events to FILE, one per line (after --profile, if given)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show state updates, custom events, usage and child phases",
    )
    parser.add_argument("--no-thoughts", action="store_true", help="hide the planner's thoughts")
    parser.add_argument(
        "--profile",
        choices=("user_chat", "agent_debug", "metrics"),
        help="show the stream through an event profile (default: everything)",
    )


# --- commands -------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import build_demo_agent

    if args.delay < 0:
        raise _UsageError("--delay must be >= 0")
    if args.model is None:
        if args.base_url is not None:
            raise _UsageError("--base-url goes with --model NAME")
        return _execute(build_demo_agent(delay=args.delay), DEMO_QUESTION, args)
    try:
        from .models import OpenAIChatModel
    except ImportError:
        raise _UsageError(
            'demo --model needs the openai extra: pip install "runstream[openai]"'
        ) from None
    try:
        model = OpenAIChatModel(args.model, base_url=args.base_url)
    except ValueError as exc:
        raise _UsageError(f"--model: {exc}") from None
    app = build_demo_agent(delay=args.delay, model=model)
    return _execute(app, DEMO_QUESTION, args, cleanup=model.aclose)


def _cmd_run(args: argparse.Namespace) -> int:
    app = _load_graph(args.target)
    try:
        graph_input = json.loads(args.input)
    except json.JSONDecodeError as exc:
        raise _UsageError(f"--input is not JSON: {exc}") from None
    return _execute(app, graph_input, args, thread_id=args.thread_id)


def _served_graphs(args: argparse.Namespace, command: str) -> dict[str, CompiledGraph]:
    if args.demo == (args.target is not None):
        raise _UsageError(f"{command} needs MOD:ATTR or --demo (one of them)")
    if args.delay < 0:
        raise _UsageError("--delay must be >= 0")
    if args.demo:
        from ._demo import build_demo_agent

        return {"demo": build_demo_agent(delay=args.delay)}
    return _load_graphs(args.target)


def _runtime(graphs: dict[str, CompiledGraph], args: argparse.Namespace, **options: Any) -> Any:
    """A Runtime on `args.bus`, once the broker answered (a one-line error otherwise)."""
    from .buses import open_bus
    from .runtime import Runtime

    try:
        probe = open_bus(args.bus)
    except ImportError as exc:
        raise _UsageError(f"--bus {args.bus}: {exc}") from None
    except ValueError as exc:
        raise _UsageError(f"--bus: {exc}") from None

    async def check() -> None:
        try:
            await probe.connect()
        finally:
            await probe.aclose()

    try:
        asyncio.run(check())
    except ConnectionError as exc:
        raise _UsageError(str(exc)) from None
    return Runtime(graphs, bus=args.bus, **options)


def _cmd_serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise _UsageError(f"--port must be between 0 and 65535, got {args.port}")
    try:
        import uvicorn

        from .server import Limits, create_app
    except ImportError:
        raise _UsageError(f"serve {_SERVER_EXTRA}") from None
    if args.max_running < 1:
        raise _UsageError(f"--max-running must be at least 1, got {args.max_running}")
    graphs = _served_graphs(args, "serve")
    runtime = _runtime(graphs, args, role=args.role, concurrency=args.max_running)
    config = uvicorn.Config(
        create_app(runtime, limits=Limits(max_running=args.max_running)),
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        log_level="warning",
        # A backstop: runs are canceled first on Ctrl-C (see _announcing), so
        # only connections that hang on by themselves meet this limit.
        timeout_graceful_shutdown=5,
    )
    server = _announcing(config, sorted(graphs))
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:
        pass  # uvicorn has shut down gracefully, then re-raised the Ctrl-C
    except SystemExit:  # uvicorn could not start (it has logged why)
        print(f"runstream: error: cannot serve on {_url(args.host, args.port)}", file=sys.stderr)
        return 1
    print("runstream: server stopped", file=sys.stderr)
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise _UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    if not args.lease > 0:
        raise _UsageError(f"--lease must be > 0, got {args.lease}")
    graphs = _served_graphs(args, "worker")
    runtime = _runtime(graphs, args, role="worker", concurrency=args.concurrency, lease=args.lease)

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with runtime:
            print(
                f"runstream: worker executing {', '.join(sorted(graphs))} from {args.bus} "
                f"(at most {args.concurrency} at once; Ctrl-C to stop)",
                flush=True,
            )
            await stop.wait()
            running = runtime.executing
            if running:
                print(f"runstream: canceling {running} run(s) before stopping", file=sys.stderr)
        print("runstream: worker stopped", file=sys.stderr)

    asyncio.run(work())
    return 0


def _announcing(config: Any, names: list[str]) -> Any:
    """A uvicorn server that prints its address once it listens, and stops runs first.

    uvicorn waits for open responses before the app's shutdown, and an event
    stream of a live run stays open until the run ends. So on Ctrl-C the runs
    still going are canceled first: each open stream ends with the run's
    `Workflow(canceled)` event and the server stops at once.
    """
    import uvicorn

    from .server import stop_runs

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            port = self.config.port
            with contextlib.suppress(IndexError, OSError):
                port = self.servers[0].sockets[0].getsockname()[1]  # the real one for --port 0
            where = _url(self.config.host, port)
            print(f"runstream: serving {', '.join(names)} at {where} (Ctrl-C to stop)", flush=True)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await stop_runs(self.config.app)
            await super().shutdown(sockets=sockets)

    return Server(config)


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _cmd_tail(args: argparse.Namespace) -> int:
    base_url, run_id, after, profile = _parse_events_url(args.url)
    profile = args.profile or profile
    try:
        from .client import RemoteError, RemoteRuns
    except ImportError:
        raise _UsageError(f"tail {_CLIENT_EXTRA}") from None
    token = args.token or os.environ.get("RUNSTREAM_TOKEN") or None

    @contextlib.asynccontextmanager
    async def remote() -> AsyncIterator[Observable[Event]]:
        async with RemoteRuns(base_url, token) as runs:
            yield runs.events(run_id, after, profile=profile)

    async def status() -> str:
        async with RemoteRuns(base_url, token) as runs:
            return str((await runs.status(run_id)).get("status"))

    try:
        try:
            return _render(remote, args, on_interrupt="stopped watching; the run goes on")
        except _NoEvents:
            pass  # the run has ended, and nothing follows `after`: say how it ended
        outcome = asyncio.run(status())
    except RemoteError as exc:
        if exc.status is not None and 400 <= exc.status < 500:
            raise _UsageError(f"{args.url}: {exc}") from None
        print(f"runstream: error: {exc}", file=sys.stderr)
        return 1
    position = "its start" if after is None else f"seq {after}"
    print(
        f"runstream: run {run_id} has ended ({outcome}); no events after {position}",
        file=sys.stderr,
    )
    return 0 if outcome == Phase.COMPLETED.value else 1


def _parse_events_url(url: str) -> tuple[str, str, int | None, str | None]:
    """`(base_url, run_id, after, profile)` of a run's events URL."""
    expected = "expected a run's events URL such as http://127.0.0.1:8000/runs/RUN_ID/events"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0..65535
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise _UsageError(f"{expected}, got {url!r} ({exc})") from None
    found = re.fullmatch(r"(.*)/runs/([^/]+)/events/?", parts.path)
    if parts.scheme not in ("http", "https") or not parts.netloc or found is None:
        raise _UsageError(f"{expected}, got {url!r}")
    base_url = urlunsplit((parts.scheme, parts.netloc, found[1], "", ""))
    query = parse_qs(parts.query)
    after: int | None = None
    if "after" in query:
        try:
            after = int(query["after"][-1])
        except ValueError:
            raise _UsageError(f"after= in the URL must be an integer: {url!r}") from None
    profile = query["profile"][-1] if "profile" in query else None
    if profile is not None:
        from .ops import Profile

        try:
            Profile.named(profile)
        except ValueError as exc:
            raise _UsageError(f"profile= in the URL: {exc}") from None
    return base_url, unquote(found[2]), after, profile


def _cmd_replay(args: argparse.Namespace) -> int:
    from . import ops
    from .codec import DecodeError
    from .sources import replay_jsonl

    speed: float = args.speed
    if not (speed >= 0 and math.isfinite(speed)):
        raise _UsageError(f"--speed must be 0 or a positive factor, got {args.speed}")
    path = Path(args.file)
    if not path.is_file():
        raise _UsageError(f"no such file: {path}" if not path.exists() else f"not a file: {path}")
    try:
        path.open("rb").close()
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror}") from None
    source = replay_jsonl(path, speed=speed, max_pause=_MAX_PAUSE)
    if args.profile:
        source = source.pipe(ops.profile(args.profile))

    @contextlib.asynccontextmanager
    async def recorded() -> AsyncIterator[Observable[Event]]:
        yield source

    try:
        return _render(recorded, args, on_interrupt="replay stopped")
    except DecodeError as exc:
        raise _UsageError(str(exc)) from None
    except _NoEvents:
        raise _UsageError(f"{path} holds no events") from None


# --- running --------------------------------------------------------------------


def _load_target(target: str) -> Any:
    """Import MOD and take ATTR; a function (not a graph or mapping) is called."""
    from ._callables import is_async_callable
    from .graph import CompiledGraph

    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise _UsageError(f"expected MOD:ATTR (e.g. myproject.agents:app), got {target!r}")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        raise _UsageError(_file_given(module_name, attr_path))
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise _UsageError(f"module not found: {module_name}") from None
        raise _UsageError(f"cannot import {module_name}: {exc}") from None
    except Exception as exc:
        raise _UsageError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _UsageError(f"module {module_name} has no attribute {attr_path}") from None
    if not isinstance(obj, CompiledGraph | Mapping) and callable(obj):
        if is_async_callable(obj):  # calling it would only make a coroutine
            graphs = sorted(
                name
                for name, value in vars(module).items()
                if isinstance(value, CompiledGraph) and not name.startswith("_")
            )
            where = f" (graphs in {module_name}: {', '.join(graphs)})" if graphs else ""
            raise _UsageError(
                f"{target} is an async function, not a graph: pass a CompiledGraph or a "
                f"function that returns one{where}"
            )
        try:
            obj = obj()
        except Exception as exc:
            raise _UsageError(f"calling {target}() failed: {type(exc).__name__}: {exc}") from None
    return obj


def _file_given(module_name: str, attr_path: str) -> str:
    """The error for a file path given as MOD, with the module name to use when there is one."""
    message = f"{module_name} is a file path: MOD is a module name"
    path = Path(module_name.removesuffix(".py"))
    if path.is_absolute():
        with contextlib.suppress(ValueError):
            path = path.relative_to(Path.cwd())
    if path.parts and all(part.isidentifier() for part in path.parts):
        return f"{message}, try {'.'.join(path.parts)}:{attr_path}"
    return f"{message}, importable from the current directory"


def _load_graph(target: str) -> CompiledGraph:
    from .graph import CompiledGraph

    obj = _load_target(target)
    if not isinstance(obj, CompiledGraph):
        raise _UsageError(
            f"{target} is not a CompiledGraph (got {type(obj).__name__}); "
            "pass a compiled graph or a function that returns one"
        )
    return obj


def _load_graphs(target: str) -> dict[str, CompiledGraph]:
    """The graphs to serve: `{graph.name: graph}` for one graph, or the mapping given."""
    from .graph import CompiledGraph

    obj = _load_target(target)
    if isinstance(obj, CompiledGraph):
        return {obj.name: obj}
    if not isinstance(obj, Mapping):
        raise _UsageError(
            f"{target} is not a CompiledGraph or a mapping of names to graphs "
            f"(got {type(obj).__name__}); pass one, or a function that returns one"
        )
    if not obj:
        raise _UsageError(f"{target} is an empty mapping: there is no graph to serve")
    graphs: dict[str, CompiledGraph] = {}
    for name, graph in obj.items():
        if not isinstance(name, str) or not name:
            raise _UsageError(f"{target}: graph names must be non-empty strings, got {name!r}")
        if not isinstance(graph, CompiledGraph):
            raise _UsageError(
                f"{target}[{name!r}] is not a CompiledGraph (got {type(graph).__name__})"
            )
        graphs[name] = graph
    return graphs


def _execute(
    app: CompiledGraph,
    graph_input: Any,
    args: argparse.Namespace,
    *,
    thread_id: str | None = None,
    cleanup: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run `app` on the terminal; `cleanup()` is awaited once the run is over."""
    from . import ops

    @contextlib.asynccontextmanager
    async def local() -> AsyncIterator[Observable[Event]]:
        try:
            try:
                stream = app.run(graph_input, thread_id=thread_id)
            except (TypeError, KeyError, ValueError) as exc:
                raise _UsageError(f"the graph does not take this input: {exc}") from None
            yield stream.pipe(ops.profile(args.profile)) if args.profile else stream
        finally:
            if cleanup is not None:
                await cleanup()

    return _render(local, args, on_interrupt="run canceled")


class _NoEvents(Exception):
    """The source ended without a single event."""


class _Seen:
    """Counts what passes, so a stream that ended empty can be told apart."""

    def __init__(self) -> None:
        self.count = 0

    async def send(self, item: Event) -> None:
        self.count += 1

    async def close(self) -> None:
        return None


def _render(
    open_source: Callable[[], AbstractAsyncContextManager[Observable[Event]]],
    args: argparse.Namespace,
    *,
    on_interrupt: str,
) -> int:
    """Render a stream live on the terminal (and record it with `--jsonl`).

    Returns 0 when the root run completed, 1 otherwise, 130 after Ctrl-C. An
    error of the source other than `RunFailed` is raised after the summary.

    Raises:
        _NoEvents: the source ended (or failed) before its first event.
    """
    from .sinks import ConsoleSink, JsonlSink

    console = ConsoleSink(
        show_thoughts=not args.no_thoughts, show_state=args.verbose, summary=False
    )
    seen = _Seen()
    sinks: list[Any] = [console, seen]
    if args.jsonl:
        try:
            sinks.append(JsonlSink(args.jsonl))
        except OSError as exc:
            raise _UsageError(f"cannot write {args.jsonl}: {exc.strerror}") from None
    renderer = console.renderer
    try:
        asyncio.run(_consume(open_source, sinks))
    except KeyboardInterrupt:
        renderer.interrupted()
        renderer.summary()
        print(f"runstream: interrupted, {on_interrupt}", file=sys.stderr)
        return 130
    except (_UsageError, _NoEvents):
        raise
    except Exception:
        if not seen.count:
            raise
        renderer.summary()
        raise
    if not seen.count:
        raise _NoEvents()
    renderer.summary()
    return 0 if renderer.outcome is Phase.COMPLETED else 1


async def _consume(
    open_source: Callable[[], AbstractAsyncContextManager[Observable[Event]]],
    sinks: list[Any],
) -> None:
    from .graph import RunFailed
    from .sinks import attach

    async with open_source() as source:
        att = attach(source, *sinks)
        try:
            await att.wait()
        except RunFailed:
            pass  # the terminal Workflow(failed) event has been rendered already
        except asyncio.CancelledError:  # Ctrl-C: stop the run, close the sinks
            att.dispose()
            with contextlib.suppress(BaseException):
                await att.wait()
            raise
