// What the scripts share: the output contract, an SSE reader written from the
// spec, and the two protocols' own client libraries applied to a list of frames.
//
// Every script prints ONE JSON object on stdout. When a library rejects
// something, it exits 1 with the library's error (and the frame concerned) on
// stderr. Whatever the libraries print with console.warn or console.error is
// collected into `warnings`, so a test can insist that there are none.

import { HttpAgent, defaultApplyEvents, enforceEvents, verifyEvents } from "@ag-ui/client";
import { EventSchemas } from "@ag-ui/core/schemas";
import { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } from "ai";
import { from, lastValueFrom, tap, toArray } from "rxjs";

export const warnings = [];
for (const level of ["warn", "error"]) {
  console[level] = (...args) => {
    warnings.push(args.map((a) => (a instanceof Error ? a.message : String(a))).join(" "));
  };
}

/** Runs `body`, prints its result as JSON; on an error, prints it on stderr and exits 1. */
export async function main(body) {
  try {
    const result = await body(process.argv.slice(2));
    process.stdout.write(JSON.stringify({ ...result, warnings }) + "\n");
  } catch (error) {
    const lines = [error?.stack ?? String(error)];
    for (let cause = error?.cause; cause; cause = cause.cause) {
      lines.push(`caused by: ${cause?.stack ?? String(cause)}`);
    }
    if (error?.frame !== undefined) lines.push(`frame: ${JSON.stringify(error.frame)}`);
    if (warnings.length) lines.push(`library warnings: ${JSON.stringify(warnings)}`);
    process.stderr.write(lines.join("\n") + "\n");
    process.exitCode = 1;
  }
}

/** An error that names the frame it is about. */
export function frameError(message, frame, cause) {
  const error = new Error(message, { cause });
  error.frame = frame;
  return error;
}

/**
 * An SSE parser as the WHATWG spec describes it: lines end with CRLF, LF or CR;
 * a blank line dispatches; `:` lines are comments; an event without data is
 * not dispatched, and neither is one the stream ends in the middle of.
 * `frame.id` is the `id:` field of that frame itself (null if it had none).
 */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.data = null;
    this.id = null;
    this.lines = [];
  }

  /** The frames `text` completes, in order. */
  feed(text) {
    this.buffer += text;
    const frames = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A CR at the very end may be the first half of a CRLF: wait for more.
      if (match === null || (match[0] === "\r" && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const frame = this.line(line);
      if (frame !== null) frames.push(frame);
    }
    return frames;
  }

  line(line) {
    if (line === "") {
      const frame = this.data === null ? null : { id: this.id, data: this.data };
      this.reset();
      return frame;
    }
    if (line.startsWith(":")) return null;
    this.lines.push(line);
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") this.data = this.data === null ? value : `${this.data}\n${value}`;
    else if (name === "id" && !value.includes("\0")) this.id = value;
    return null;
  }

  /** What a cut stream left undispatched: the partial frame's text. */
  pending() {
    return this.lines.map((line) => `${line}\n`).join("") + this.buffer;
  }

  /** Whether the stream stopped inside a frame (its fields, or part of a line, read). */
  midFrame() {
    return this.lines.length > 0 || this.buffer.length > 0;
  }
}

/** `frames` ({id, data}) as SSE text, the way the server framed them. */
export function sseText(frames, done) {
  const parts = frames.map((f) => `id: ${f.id}\ndata: ${JSON.stringify(f.data)}\n\n`);
  if (done) parts.push("data: [DONE]\n\n");
  return parts.join("");
}

/** Reads a whole SSE response into frames (`[DONE]` is reported, not returned as a frame). */
export async function readFrames(response) {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const frames = [];
  let done = false;
  const take = (text) => {
    for (const frame of parser.feed(text)) {
      if (frame.data === "[DONE]") done = true;
      else frames.push({ id: frame.id, data: parseData(frame) });
    }
  };
  for await (const chunk of response.body) take(decoder.decode(chunk, { stream: true }));
  take(decoder.decode());
  return { frames, done };
}

export function parseData(frame) {
  try {
    return JSON.parse(frame.data);
  } catch (error) {
    throw frameError("a frame's data is not JSON", frame, error);
  }
}

/** The response's headers a test looks at. */
export function headersOf(response) {
  return {
    contentType: response.headers.get("content-type"),
    uiMessageStream: response.headers.get("x-vercel-ai-ui-message-stream"),
    runId: response.headers.get("x-run-id"),
  };
}

// --- AG-UI ----------------------------------------------------------------

/**
 * Checks AG-UI frames with @ag-ui/core's EventSchemas, one by one, then runs
 * the whole stream through @ag-ui/client as its agents do: enforceEvents
 * (which warns about any field it does not know, and strips it),
 * verifyEvents, and defaultApplyEvents. Returns the verified events and the
 * messages and state the client ends up with.
 */
export async function checkAgUi(frames) {
  const events = frames.map((frame) => {
    const parsed = EventSchemas.safeParse(frame.data);
    if (!parsed.success) {
      throw frameError(
        `@ag-ui/core EventSchemas rejects frame ${frame.id}: ${parsed.error.message}`,
        frame,
      );
    }
    return parsed.data;
  });
  let verified;
  let at = -1; // the frame being checked when a stage throws (the pipeline is synchronous)
  try {
    const checked = from(events).pipe(
      tap(() => (at += 1)),
      enforceEvents(),
      verifyEvents(),
      toArray(),
    );
    verified = await lastValueFrom(checked);
  } catch (error) {
    throw frameError(
      `@ag-ui/client rejects the stream at frame ${frames[at]?.id}: ${error.message}`,
      frames[at],
      error,
    );
  }
  const agent = new HttpAgent({ url: "http://unused.invalid/" });
  const input = { threadId: "t", runId: "r", messages: [], tools: [], context: [], state: {} };
  let messages = [];
  let state = {};
  const mutations = defaultApplyEvents(input, from(verified), agent, []);
  await lastValueFrom(mutations.pipe(toArray())).then((all) => {
    for (const mutation of all) {
      if (mutation.messages !== undefined) messages = mutation.messages;
      if (mutation.state !== undefined) state = mutation.state;
    }
  });
  return { events: verified, messages, state };
}

// --- AI SDK ---------------------------------------------------------------

/**
 * Reads a UI message stream (bytes of SSE) as useChat's DefaultChatTransport
 * does: parseJsonEventStream with uiMessageChunkSchema, a chunk that fails the
 * schema being an error; then readUIMessageStream, which stops at the first
 * error. Returns the chunks and the final UI message.
 */
export async function readAiSdk(byteStream) {
  const chunks = [];
  let index = 0;
  const json = parseJsonEventStream({ stream: byteStream, schema: uiMessageChunkSchema });
  const parsed = json.pipeThrough(
    new TransformStream({
      transform(result, controller) {
        if (!result.success) {
          throw frameError(
            `the ai uiMessageChunkSchema rejects chunk ${index}: ${result.error.message}`,
            result.rawValue,
            result.error,
          );
        }
        index += 1;
        chunks.push(result.value);
        controller.enqueue(result.value);
      },
    }),
  );
  let failure = null;
  let message = null;
  const snapshots = readUIMessageStream({
    stream: parsed,
    terminateOnError: true,
    onError: (error) => {
      failure ??= error;
    },
  });
  try {
    for await (const snapshot of snapshots) message = snapshot;
  } catch (error) {
    failure ??= error;
  }
  if (failure !== null) {
    // A chunk the schema refused names itself; else the chunk last handed on is at fault.
    const at = failure.frame !== undefined ? failure.frame : (chunks[chunks.length - 1] ?? null);
    const message = `the ai readUIMessageStream rejects the stream: ${failure.message}`;
    throw frameError(message, at, failure);
  }
  return { chunks, message };
}

/** A ReadableStream of the UTF-8 bytes of `text`. */
export function bytesOf(text) {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}
