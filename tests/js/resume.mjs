// Reads a run's protocol stream over a connection that may be cut, resuming
// with Last-Event-ID as an EventSource would, then hands the whole stream to
// the protocol's own library.
//
//   node resume.mjs EVENTS_URL FORMAT [MAX_CONNECTIONS]
//
// FORMAT is "ag-ui" or "ai-sdk". A connection that fails (refused, cut in the
// headers, or cut in the body) is retried with the `id:` of the last frame
// dispatched on any connection; a partial frame at the cut is dropped, as the
// SSE spec says. It reconnects at once: the `retry:` delay is a browser's
// courtesy, and waiting it would only slow the test. The read ends when a
// response ends cleanly, or at a 204 (the server has nothing after that id).
// Then every frame, in order, goes to EventSchemas, enforceEvents and
// verifyEvents (ag-ui) or, framed as SSE again, to parseJsonEventStream and
// readUIMessageStream (ai-sdk).
//
// Prints {frames: [{id, data}], done, connections: [{lastEventId, status,
// frames, cut, midFrame, pending}], messages | message, warnings}.

import {
  SseParser,
  bytesOf,
  checkAgUi,
  main,
  parseData,
  readAiSdk,
  sseText,
} from "./lib.mjs";

function fatal(error) {
  error.fatal = true;
  return error;
}

main(async ([url, format, maxConnections = "20"]) => {
  if (format !== "ag-ui" && format !== "ai-sdk") throw new Error(`unknown format ${format}`);
  const frames = [];
  const connections = [];
  let lastEventId = null;
  let done = false;
  let ended = false;
  while (!ended) {
    if (connections.length >= Number(maxConnections)) {
      throw new Error(`no end after ${maxConnections} connections: ${JSON.stringify(connections)}`);
    }
    const connection = { lastEventId, status: null, frames: 0, cut: null, midFrame: false };
    connections.push(connection);
    const headers = { accept: "text/event-stream", "cache-control": "no-cache" };
    if (lastEventId !== null) headers["last-event-id"] = lastEventId;
    const parser = new SseParser();
    const decoder = new TextDecoder();
    const take = (text) => {
      for (const frame of parser.feed(text)) {
        if (frame.data === "[DONE]") {
          done = true;
          continue;
        }
        if (frame.id === null) throw fatal(new Error(`a frame without an id: ${frame.data}`));
        let data;
        try {
          data = parseData(frame);
        } catch (error) {
          throw fatal(error);
        }
        frames.push({ id: frame.id, data });
        connection.frames += 1;
        lastEventId = frame.id;
      }
    };
    try {
      const response = await fetch(url, { headers });
      connection.status = response.status;
      if (response.status === 204) break;
      if (response.status !== 200) {
        throw fatal(new Error(`HTTP ${response.status} from ${url}: ${await response.text()}`));
      }
      for await (const chunk of response.body) take(decoder.decode(chunk, { stream: true }));
      take(decoder.decode());
      ended = true;
    } catch (error) {
      if (error.fatal) throw error;
      // A cut: what the failed connection left undispatched is dropped.
      connection.cut = String(error?.cause?.code ?? error?.cause?.message ?? error?.message);
      connection.midFrame = parser.midFrame();
      connection.pending = parser.pending();
    }
  }
  const result = { frames, done, connections };
  if (format === "ag-ui") {
    const { messages, state } = await checkAgUi(frames);
    return { ...result, messages, state };
  }
  const { message } = await readAiSdk(bytesOf(sseText(frames, done)));
  return { ...result, message };
});
