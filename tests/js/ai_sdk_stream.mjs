// Reads one AI SDK UI message stream response as useChat would.
//
//   node ai_sdk_stream.mjs URL [BODY_JSON]
//
// GETs URL (or POSTs BODY_JSON to it, as useChat's DefaultChatTransport posts
// a chat) and reads the body with parseJsonEventStream + uiMessageChunkSchema
// and readUIMessageStream from `ai`. Prints {status, headers, chunks, message,
// warnings}: `message` is the final UI message (its parts: text, reasoning,
// tool-* with state/input/output, data-*). `sendsAgain` is what useChat's
// lastAssistantMessageIsCompleteWithToolCalls says of that message: whether a
// chat using it would send itself again (client-side tools all answered).

import { lastAssistantMessageIsCompleteWithToolCalls } from "ai";
import { headersOf, main, readAiSdk } from "./lib.mjs";

main(async ([url, body]) => {
  const init =
    body === undefined
      ? { headers: { accept: "text/event-stream" } }
      : { method: "POST", headers: { "content-type": "application/json" }, body };
  const response = await fetch(url, init);
  if (response.status !== 200) {
    throw new Error(`HTTP ${response.status} from ${url}: ${await response.text()}`);
  }
  const { chunks, message } = await readAiSdk(response.body);
  const sendsAgain = lastAssistantMessageIsCompleteWithToolCalls({ messages: [message] });
  return { status: response.status, headers: headersOf(response), chunks, message, sendsAgain };
});
