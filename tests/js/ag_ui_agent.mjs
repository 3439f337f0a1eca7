// Runs an agent to completion with @ag-ui/client's HttpAgent, answering the
// calls to tools the client declared (a client-side tool round trip).
//
//   node ag_ui_agent.mjs AGENT_URL TOOLS_JSON USER_TEXT RESULTS_JSON [MAX_RUNS]
//
// TOOLS_JSON is the AG-UI tools the client declares ([{name, description,
// parameters}]); RESULTS_JSON maps a tool name to the content the client
// answers with. Each run is HttpAgent.runAgent(); when a run finishes with
// pending tool calls (RUN_FINISHED outcome success with pendingToolCallIds),
// the script adds one tool message per call and runs again. Prints
// {runs: [{outcome, pendingToolCallIds, newMessages, events, serverRunId}],
// messages, warnings}; serverRunId is the response's X-Run-Id header (the
// server's own id of the run, while the events echo the client's runId).

import { HttpAgent } from "@ag-ui/client";
import { main } from "./lib.mjs";

main(async ([url, toolsJson, userText, resultsJson, maxRuns = "4"]) => {
  const tools = JSON.parse(toolsJson);
  const results = JSON.parse(resultsJson);
  const serverRunIds = [];
  const fetchAndNote = async (...args) => {
    const response = await fetch(...args);
    serverRunIds.push(response.headers.get("x-run-id"));
    return response;
  };
  const agent = new HttpAgent({ url, threadId: "js-thread", fetch: fetchAndNote });
  agent.addMessage({ id: "user-1", role: "user", content: userText });
  const runs = [];
  for (let n = 0; n < Number(maxRuns); n++) {
    const run = { outcome: null, pendingToolCallIds: [], events: [] };
    const { newMessages } = await agent.runAgent(
      { runId: `js-run-${n}`, tools },
      {
        onEvent: ({ event }) => {
          run.events.push(event);
        },
        onRunFinishedEvent: ({ outcome, pendingToolCallIds }) => {
          run.outcome = outcome;
          run.pendingToolCallIds = pendingToolCallIds ?? [];
        },
      },
    );
    run.newMessages = newMessages;
    run.serverRunId = serverRunIds[n] ?? null;
    runs.push(run);
    if (run.outcome !== "success") {
      throw new Error(`run ${n} ended with outcome ${run.outcome}: ${JSON.stringify(run.events)}`);
    }
    if (run.pendingToolCallIds.length === 0) break;
    const calls = new Map();
    for (const message of agent.messages) {
      for (const call of message.toolCalls ?? []) calls.set(call.id, call);
    }
    for (const id of run.pendingToolCallIds) {
      const call = calls.get(id);
      if (call === undefined) throw new Error(`pending tool call ${id} is not in the messages`);
      const name = call.function.name;
      if (!(name in results)) throw new Error(`no result given for the client tool ${name}`);
      const content = results[name];
      agent.addMessage({ id: `result-${id}`, role: "tool", toolCallId: id, content });
    }
  }
  return { runs, messages: agent.messages };
});
