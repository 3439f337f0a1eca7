"""Tokens end to end: an agent streaming a 2,000-word reply, every token to an `async for`.

Side by side in one process (see `_common.py` for the method: CPU time,
medians of interleaved rounds, a fresh `asyncio.run` per case). Each case
plays `--replies` runs one after the other (default 5), each a reply of
`--words` words (default 2,000) streamed as word-sized chunks ("w17 "), the
same 2,000 chunks for every contender; the consumer appends every text delta
to a list, and the script checks that the deltas join back to the reply.
Every model is a local fake: no network, no key.

- runstream: `rs.create_agent(rs.ScriptedModel([reply], delay=0))`, read by
  `async for event in app.run("hi")`, counting `AssistantReply` events with
  text;
- langgraph, one-node graph: a `MessagesState` graph whose one node awaits
  `model.ainvoke(messages)`, read by `async for chunk, meta in
  app.astream(..., stream_mode="messages")`; the model is a small
  `BaseChatModel` with a native `_astream` yielding one `AIMessageChunk` per
  chunk;
- langgraph, prebuilt react agent: `langgraph.prebuilt.create_react_agent`
  with the same model and no tools (an agent loop, as `create_agent` is),
  read the same way;
- openai-agents: `Runner.run_streamed(agent, "hi")` on an `Agent` whose model
  implements the SDK's `Model` interface: `stream_response` yields the
  Responses API stream events of one output message, one
  `response.output_text.delta` per chunk (built with `model_construct`, as
  the openai client builds stream events, without validation); the consumer
  counts the raw text delta events of `stream_events()`; tracing disabled;
- pydantic-ai, run_stream: an `Agent(FunctionModel(stream_function=...))`
  whose stream function yields the chunks, read by `agent.run_stream("hi")`
  and `result.stream_text(delta=True, debounce_by=None)` (no grouping);
- pydantic-ai, run_stream_events: the same agent read by
  `agent.run_stream_events("hi")`, counting the text of `PartStartEvent` and
  `PartDeltaEvent`.

- floor: the plain floor of `_common.plain_floor`, one `asyncio.Queue(1024)`
  carrying as many small dicts as there are tokens, for scale.

Prints tokens/s for each (median of the rounds), runstream's ratio to the
floor, to each peer and to the fastest peer.

    python benchmarks/tokens.py [--words 2000] [--replies 5] [--rounds 11]
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext
from typing import Any

from _common import (
    Contender,
    header,
    medians,
    package_version,
    parser,
    per_item,
    per_second,
    plain_floor,
    print_costs,
    print_rates,
    print_ratio,
    print_ratio_header,
    progress,
    rate_spread,
    ratio,
    run_rounds,
)

import runstream as rs

FLOOR = "floor: asyncio.Queue(1024), {'i': i}"
RUNSTREAM = "runstream: create_agent, async for"

Run = Callable[[], Contender]


def reply_text(words: int) -> str:
    return " ".join(f"w{i % 97}" for i in range(words))


def word_chunks(text: str) -> list[str]:
    """Word-sized chunks with their trailing whitespace, as `ScriptedModel` streams them."""
    return re.findall(r"\S+\s*", text)


def repeat(replies: int, one: Callable[[], Any]) -> Contender:
    """A case: `replies` runs one after the other; returns the tokens delivered."""

    async def case() -> int:
        total = 0
        for _ in range(replies):
            total += await one()
        return total

    return case


def checked(parts: list[str], text: str, who: str) -> int:
    if "".join(parts) != text:
        raise SystemExit(f"{who}: the deltas do not join back to the reply")
    return len(parts)


# --- runstream ------------------------------------------------------------------


def runstream_contender(text: str, replies: int) -> Contender:
    app = rs.create_agent(rs.ScriptedModel([text], delay=0))

    async def one() -> int:
        parts: list[str] = []
        async for event in app.run("hi"):
            if type(event) is rs.AssistantReply and event.text:
                parts.append(event.text)
        return checked(parts, text, "runstream")

    return repeat(replies, one)


# --- LangGraph ------------------------------------------------------------------


def langgraph_contenders(text: str, replies: int) -> dict[str, Contender]:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langgraph.graph import START, MessagesState, StateGraph

    chunks = word_chunks(text)

    class FakeChatModel(BaseChatModel):
        """Streams the reply natively async, one `AIMessageChunk` per chunk."""

        @property
        def _llm_type(self) -> str:
            return "fake-bench"

        def _generate(
            self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

        async def _astream(
            self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> AsyncIterator[ChatGenerationChunk]:
            for chunk in chunks:
                yield ChatGenerationChunk(message=AIMessageChunk(content=chunk))

    model = FakeChatModel()

    async def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("model", call_model)
    g.add_edge(START, "model")
    one_node = g.compile()
    with warnings.catch_warnings():
        # Deprecated in LangGraph 1.x in favour of langchain's create_agent (another package).
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

        react = create_react_agent(model, tools=[])

    def contender(app: Any, who: str) -> Contender:
        async def one() -> int:
            parts: list[str] = []
            inputs = {"messages": [HumanMessage("hi")]}
            async for message, _meta in app.astream(inputs, stream_mode="messages"):
                if isinstance(message, AIMessageChunk) and message.content:
                    parts.append(message.content)
            return checked(parts, text, who)

        return repeat(replies, one)

    return {
        "langgraph: one-node graph, messages": contender(one_node, "langgraph one-node"),
        "langgraph: react agent, messages": contender(react, "langgraph react agent"),
    }


# --- OpenAI Agents SDK ----------------------------------------------------------


def openai_agents_contenders(text: str, replies: int) -> dict[str, Contender]:
    from agents import Agent, Runner, set_tracing_disabled
    from agents.models.interface import Model
    from openai.types.responses import (
        Response,
        ResponseCompletedEvent,
        ResponseContentPartAddedEvent,
        ResponseContentPartDoneEvent,
        ResponseCreatedEvent,
        ResponseOutputItemAddedEvent,
        ResponseOutputItemDoneEvent,
        ResponseOutputMessage,
        ResponseOutputText,
        ResponseTextDeltaEvent,
        ResponseTextDoneEvent,
    )

    set_tracing_disabled(True)
    chunks = word_chunks(text)

    def response(output: list[Any]) -> Response:
        return Response(
            id="resp-bench",
            created_at=0,
            model="fake-bench",
            object="response",
            output=output,
            tool_choice="none",
            tools=[],
            top_p=None,
            parallel_tool_calls=False,
        )

    class FakeModel(Model):
        """Streams one output message as Responses API events, one text delta per chunk."""

        async def get_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("the benchmark only streams")

        async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            mid = "msg-bench"
            part = ResponseOutputText(type="output_text", text=text, annotations=[])
            done = ResponseOutputMessage(
                id=mid, type="message", role="assistant", status="completed", content=[part]
            )
            started = ResponseOutputMessage(
                id=mid, type="message", role="assistant", status="in_progress", content=[]
            )
            seq = 0
            yield ResponseCreatedEvent(
                type="response.created", response=response([]), sequence_number=seq
            )
            yield ResponseOutputItemAddedEvent(
                type="response.output_item.added", item=started, output_index=0, sequence_number=1
            )
            yield ResponseContentPartAddedEvent(
                type="response.content_part.added",
                item_id=mid,
                output_index=0,
                content_index=0,
                part=ResponseOutputText(type="output_text", text="", annotations=[]),
                sequence_number=2,
            )
            seq = 3
            for chunk in chunks:
                yield ResponseTextDeltaEvent.model_construct(
                    type="response.output_text.delta",
                    item_id=mid,
                    output_index=0,
                    content_index=0,
                    delta=chunk,
                    logprobs=[],
                    sequence_number=seq,
                )
                seq += 1
            yield ResponseTextDoneEvent(
                type="response.output_text.done",
                item_id=mid,
                output_index=0,
                content_index=0,
                text=text,
                logprobs=[],
                sequence_number=seq,
            )
            yield ResponseContentPartDoneEvent(
                type="response.content_part.done",
                item_id=mid,
                output_index=0,
                content_index=0,
                part=part,
                sequence_number=seq + 1,
            )
            yield ResponseOutputItemDoneEvent(
                type="response.output_item.done", item=done, output_index=0, sequence_number=seq + 2
            )
            yield ResponseCompletedEvent(
                type="response.completed", response=response([done]), sequence_number=seq + 3
            )

    agent = Agent(name="assistant", model=FakeModel())

    async def one() -> int:
        result = Runner.run_streamed(agent, "hi")
        parts: list[str] = []
        async for event in result.stream_events():
            if event.type == "raw_response_event" and isinstance(
                event.data, ResponseTextDeltaEvent
            ):
                parts.append(event.data.delta)
        if result.final_output != text:
            raise SystemExit("openai-agents: the final output is not the reply")
        return checked(parts, text, "openai-agents")

    return {"openai-agents: Runner.run_streamed": repeat(replies, one)}


# --- Pydantic AI ----------------------------------------------------------------


def pydantic_ai_contenders(text: str, replies: int) -> dict[str, Contender]:
    from pydantic_ai import Agent
    from pydantic_ai.messages import PartDeltaEvent, PartStartEvent, TextPart, TextPartDelta
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    chunks = word_chunks(text)

    async def stream(messages: list[Any], info: AgentInfo) -> AsyncIterator[str]:
        for chunk in chunks:
            yield chunk

    agent = Agent(FunctionModel(stream_function=stream))

    async def run_stream() -> int:
        parts: list[str] = []
        async with agent.run_stream("hi") as result:
            async for delta in result.stream_text(delta=True, debounce_by=None):
                parts.append(delta)
        return checked(parts, text, "pydantic-ai run_stream")

    async def run_stream_events() -> int:
        parts: list[str] = []
        stream: Any = agent.run_stream_events("hi")
        # Pydantic AI 2 hands out an async context manager, 1.x the iterator itself.
        async with stream if hasattr(stream, "__aenter__") else nullcontext(stream) as events:
            async for event in events:
                if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                    parts.append(event.delta.content_delta)
                elif isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                    if event.part.content:
                        parts.append(event.part.content)
        return checked(parts, text, "pydantic-ai run_stream_events")

    return {
        "pydantic-ai: run_stream, stream_text": repeat(replies, run_stream),
        "pydantic-ai: run_stream_events": repeat(replies, run_stream_events),
    }


# --- main -----------------------------------------------------------------------


# Each peer: the distributions it needs, and what makes its contenders.
PEERS: dict[str, tuple[tuple[str, ...], Callable[[str, int], dict[str, Contender]]]] = {
    "langgraph": (("langgraph", "langchain-core"), langgraph_contenders),
    "openai-agents": (("openai-agents",), openai_agents_contenders),
    "pydantic-ai": (("pydantic-ai-slim",), pydantic_ai_contenders),
}


def main() -> None:
    p = parser(__doc__, events=None, rounds=11)
    p.add_argument("--words", type=int, default=2000, help="words in the reply, default 2,000")
    p.add_argument("--replies", type=int, default=5, help="replies per case, default 5")
    args = p.parse_args()
    text = reply_text(args.words)
    tokens = len(word_chunks(text))
    n = tokens * args.replies
    for var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        if os.environ.get(var, "").lower() == "true":
            progress(f"{var} is set: LangSmith tracing would add network calls; unset it")

    header("langgraph", "langchain-core", "openai-agents", "openai", "pydantic-ai-slim")
    contenders: dict[str, Contender] = {
        FLOOR: lambda: plain_floor(n),
        RUNSTREAM: runstream_contender(text, args.replies),
    }
    skipped = add_peers(contenders, PEERS, text, args.replies)
    seconds = run_rounds(contenders, n, args.rounds, seed=args.seed)
    print(
        f"{args.replies} replies of {args.words:,} words ({tokens:,} chunks) per case,"
        f" {n:,} tokens; median of {args.rounds} rounds"
    )
    report(seconds, n, RUNSTREAM, FLOOR, skipped)


def add_peers(
    contenders: dict[str, Contender],
    peers: dict[str, tuple[tuple[str, ...], Callable[..., dict[str, Contender]]]],
    *args: Any,
) -> list[str]:
    """Add each installed peer's contenders (`make(*args)`); the peers left out, and why."""
    skipped: list[str] = []
    for peer, (needs, make) in peers.items():
        missing = [dist for dist in needs if package_version(dist) is None]
        if missing:
            skipped.append(f"{peer} ({', '.join(missing)} not installed)")
            progress(f"{peer} skipped: pip install -e '.[bench]'")
            continue
        contenders.update(make(*args))
    return skipped


def report(
    seconds: dict[str, list[Any]],
    n: int,
    runstream: str,
    floor: str,
    skipped: list[str],
    *,
    floor_label: str = "the floor",
    peer_target: str = "",
) -> None:
    """Print tokens/s, cost per token, and runstream's ratio to the floor and each peer."""
    med = medians(seconds)
    rate = {name: per_second(n, s) for name, s in med.items()}
    print_rates(rate, unit="tokens/s")
    print_costs({name: per_item(n, s) for name, s in med.items()}, unit="us per token")
    print_ratio_header("runstream's tokens/s over")
    print_ratio(
        floor_label,
        ratio(rate[runstream], rate[floor]),
        spread=rate_spread(seconds, runstream, floor),
    )
    peers = [name for name in seconds if name not in (runstream, floor)]
    fastest = max(peers, key=lambda name: rate[name].cpu) if peers else None
    for name in peers:
        print_ratio(
            name + (" (fastest peer)" if name == fastest else "") + peer_target,
            ratio(rate[runstream], rate[name]),
            spread=rate_spread(seconds, runstream, name),
        )
    if skipped:
        print(f"  not run: {'; '.join(skipped)}")


if __name__ == "__main__":
    main()
