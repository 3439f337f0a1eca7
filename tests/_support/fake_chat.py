"""A LangChain chat model that streams text, reasoning and tool calls natively.

LangChain's `GenericFakeChatModel` streams text only, and only synchronously;
`StreamingFake` subclasses it to stream each scripted `AIMessage` the way a
provider integration does: word-sized text chunks, reasoning blocks, tool-call
fragments by `index` (id and name on the first), usage on the last chunk.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

USAGE = {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}


class StreamingFake(GenericFakeChatModel):
    """Plays `messages` (AIMessages) in order, one per call, streamed in chunks.

    An AIMessage's `additional_kwargs["reasoning"]` is streamed first, as
    reasoning content blocks.
    """

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> StreamingFake:  # type: ignore[override]
        return self

    def chunks(self) -> list[AIMessageChunk]:
        message = next(self.messages)
        assert isinstance(message, AIMessage)
        mid = message.id or f"lc_run-{uuid.uuid4()}"
        out: list[AIMessageChunk] = []
        reasoning = message.additional_kwargs.get("reasoning", "")
        for word in _words(reasoning):
            block = {"type": "reasoning", "reasoning": word}
            out.append(AIMessageChunk(content=[block], id=mid))
        for word in _words(str(message.content)):
            out.append(AIMessageChunk(content=word, id=mid))
        for index, call in enumerate(message.tool_calls):
            args = json.dumps(call["args"])
            half = len(args) // 2
            first = tool_call_chunk(name=call["name"], args=args[:half], id=call["id"], index=index)
            rest = tool_call_chunk(name=None, args=args[half:], id=None, index=index)
            out.append(AIMessageChunk(content="", id=mid, tool_call_chunks=[first]))
            out.append(AIMessageChunk(content="", id=mid, tool_call_chunks=[rest]))
        out.append(
            AIMessageChunk(
                content="",
                id=mid,
                usage_metadata=USAGE,  # type: ignore[arg-type]
                response_metadata={"model_name": "fake-1"},
                chunk_position="last",
            )
        )
        return out

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self.chunks():
            generation = ChatGenerationChunk(message=chunk)
            if run_manager is not None:
                text = chunk.content if isinstance(chunk.content, str) else ""
                await run_manager.on_llm_new_token(text, chunk=generation)
            yield generation

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        whole: AIMessageChunk | None = None
        for chunk in self.chunks():
            whole = chunk if whole is None else whole + chunk
        assert whole is not None
        return ChatResult(generations=[ChatGeneration(message=whole)])


def _words(text: str) -> list[str]:
    words = text.split(" ") if text else []
    return [w if i == 0 else " " + w for i, w in enumerate(words)]
