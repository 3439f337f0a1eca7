// Chats with a graph through the AI SDK's own chat client: the Chat that
// useChat wraps (AbstractChat, with an in-memory state instead of React's) and
// its DefaultChatTransport, running client-side tools in onToolCall.
//
//   node ai_sdk_chat.mjs send API CHAT_ID USER_TEXT RESULTS_JSON
//   node ai_sdk_chat.mjs resume API CHAT_ID USER_TEXT
//
// API is the route useChat is given (e.g. http://host/ai-sdk/{graph}).
// `send` sends USER_TEXT. RESULTS_JSON maps a tool name to the output the
// client gives it: a call to such a tool is answered with addToolOutput, and
// lastAssistantMessageIsCompleteWithToolCalls sends the chat again. Then the
// chat reconnects once (resumeStream), as after a page reload.
// `resume` starts from a chat whose last message is USER_TEXT and only
// reconnects (resumeStream): the server replays the stream still going.
// Prints {requests: [{method, url, status, runId, body}], messages, status,
// warnings}.

import {
  AbstractChat,
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithToolCalls,
} from "ai";
import { main } from "./lib.mjs";

class MemoryState {
  constructor(messages) {
    this.status = "ready";
    this.error = undefined;
    this.messages = messages;
  }

  pushMessage(message) {
    this.messages = [...this.messages, message];
  }

  popMessage() {
    this.messages = this.messages.slice(0, -1);
  }

  replaceMessage(index, message) {
    this.messages = this.messages.map((m, i) => (i === index ? message : m));
  }

  snapshot(thing) {
    return structuredClone(thing);
  }
}

class Chat extends AbstractChat {}

main(async ([mode, api, chatId, userText, resultsJson = "{}"]) => {
  if (mode !== "send" && mode !== "resume") throw new Error(`unknown mode ${mode}`);
  const results = JSON.parse(resultsJson);
  const requests = [];
  const transport = new DefaultChatTransport({
    api,
    fetch: async (url, init) => {
      const response = await fetch(url, init);
      requests.push({
        method: init?.method ?? "GET",
        url: String(url),
        status: response.status,
        runId: response.headers.get("x-run-id"),
        body: init?.body ? JSON.parse(init.body) : null,
      });
      return response;
    },
  });
  const failures = [];
  const user = { id: "user-1", role: "user", parts: [{ type: "text", text: userText }] };
  const chat = new Chat({
    id: chatId,
    transport,
    state: new MemoryState(mode === "resume" ? [user] : []),
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
    onError: (error) => failures.push(error),
    onToolCall: ({ toolCall }) => {
      if (!(toolCall.toolName in results)) return; // the server runs it
      // Not awaited: the chat records the output once the stream has ended.
      chat.addToolOutput({
        tool: toolCall.toolName,
        toolCallId: toolCall.toolCallId,
        output: results[toolCall.toolName],
      });
    },
  });
  if (mode === "send") {
    await chat.sendMessage({ text: userText });
    if (failures.length) throw failures[0];
  }
  await chat.resumeStream();
  if (failures.length) throw failures[0];
  if (chat.status !== "ready") throw new Error(`the chat ended ${chat.status}: ${chat.error}`);
  return { requests, messages: chat.messages, status: chat.status };
});
