// Reads one AG-UI SSE response and checks it with the AG-UI libraries.
//
//   node ag_ui_stream.mjs URL [BODY_JSON]
//
// GETs URL (or POSTs BODY_JSON to it), validates every frame with
// @ag-ui/core's EventSchemas, runs the stream through @ag-ui/client's
// enforceEvents and verifyEvents and applies it with defaultApplyEvents,
// as its agents do. Prints
// {status, headers, frames: [{id, data}], messages, state, warnings}.

import { checkAgUi, headersOf, main, readFrames } from "./lib.mjs";

main(async ([url, body]) => {
  const init =
    body === undefined
      ? { headers: { accept: "text/event-stream" } }
      : {
          method: "POST",
          headers: { accept: "text/event-stream", "content-type": "application/json" },
          body,
        };
  const response = await fetch(url, init);
  if (response.status !== 200) {
    throw new Error(`HTTP ${response.status} from ${url}: ${await response.text()}`);
  }
  const { frames } = await readFrames(response);
  const { messages, state } = await checkAgUi(frames);
  return { status: response.status, headers: headersOf(response), frames, messages, state };
});
