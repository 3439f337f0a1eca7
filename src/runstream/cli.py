"""The `runstream` command: run a graph and watch it live in the terminal.

```text
runstream demo [--delay SECONDS] [--jsonl FILE]
runstream run MOD:ATTR [--input JSON] [--thread-id ID] [--profile P] [--jsonl FILE]
```

`serve`, `replay` and `tail` are listed but arrive with the network and
pipeline features. Exit status: 0 when the run completed, 1 when it failed or
was canceled, 2 for a usage error, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .events import Phase

if TYPE_CHECKING:
    from .graph import CompiledGraph

__all__ = ["main"]

DEMO_QUESTION = "Is solar power now cheaper than coal?"

_NOT_YET = "not available yet: arrives with the network/pipeline features"


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
        print(f"runstream: error: {exc}", file=sys.stderr)
        return 2
    return code


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

    for name, help_text in (
        ("serve", "serve graphs over HTTP, SSE and WebSocket"),
        ("replay", "render a recorded JSONL file"),
        ("tail", "follow a remote run"),
    ):
        sub = commands.add_parser(
            name, help=f"{help_text} (not available yet)", description=_NOT_YET
        )
        sub.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        sub.set_defaults(handler=_cmd_not_yet)
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
    return _execute(build_demo_agent(delay=args.delay), DEMO_QUESTION, args)


def _cmd_run(args: argparse.Namespace) -> int:
    app = _load_graph(args.target)
    try:
        graph_input = json.loads(args.input)
    except json.JSONDecodeError as exc:
        raise _UsageError(f"--input is not JSON: {exc}") from None
    return _execute(app, graph_input, args, thread_id=args.thread_id)


def _cmd_not_yet(args: argparse.Namespace) -> int:
    print(f"runstream: {_NOT_YET}", file=sys.stderr)
    return 2


# --- running --------------------------------------------------------------------


def _load_graph(target: str) -> CompiledGraph:
    from .graph import CompiledGraph

    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise _UsageError(f"expected MOD:ATTR (e.g. myproject.agents:app), got {target!r}")
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
    if not isinstance(obj, CompiledGraph) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise _UsageError(f"calling {target}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, CompiledGraph):
        raise _UsageError(
            f"{target} is not a CompiledGraph (got {type(obj).__name__}); "
            "pass a compiled graph or a function that returns one"
        )
    return obj


def _execute(
    app: CompiledGraph, graph_input: Any, args: argparse.Namespace, *, thread_id: str | None = None
) -> int:
    from .sinks import ConsoleSink, JsonlSink

    console = ConsoleSink(
        show_thoughts=not args.no_thoughts, show_state=args.verbose, summary=False
    )
    sinks: list[Any] = [console]
    if args.jsonl:
        try:
            sinks.append(JsonlSink(args.jsonl))
        except OSError as exc:
            raise _UsageError(f"cannot write {args.jsonl}: {exc.strerror}") from None
    renderer = console.renderer
    try:
        asyncio.run(_consume(app, graph_input, thread_id, sinks, args.profile))
    except KeyboardInterrupt:
        renderer.interrupted()
        renderer.summary()
        print("runstream: interrupted, run canceled", file=sys.stderr)
        return 130
    renderer.summary()
    return 0 if renderer.outcome is Phase.COMPLETED else 1


async def _consume(
    app: CompiledGraph,
    graph_input: Any,
    thread_id: str | None,
    sinks: list[Any],
    profile_name: str | None,
) -> None:
    from . import ops
    from .graph import RunFailed
    from .sinks import attach

    try:
        stream = app.run(graph_input, thread_id=thread_id)
    except (TypeError, KeyError, ValueError) as exc:
        raise _UsageError(f"the graph does not take this input: {exc}") from None
    source = stream.pipe(ops.profile(profile_name)) if profile_name else stream
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
