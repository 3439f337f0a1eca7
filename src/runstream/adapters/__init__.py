"""Other frameworks' runs as runstream event streams.

Each adapter turns a run of another framework into a cold
`Observable[Event]` (a `RunStream`) with every run invariant: `seq` without
gaps, one terminal `Workflow`, tool calls as `ToolStart` / `ToolEnd`, text as
streamed `AssistantReply` messages. Every operator, sink, encoder and
transport of runstream then works on it; disposing the stream cancels the
underlying run.

- `runstream.adapters.langgraph.from_langgraph` (extra `langgraph`).
- `runstream.adapters.pydantic_ai.from_pydantic_ai` (extra `pydantic-ai`).
"""
