/** Reading a `text/event-stream` answer: its blocks as `{id, event, data}`. */

/** One server-sent event block. */
export interface SseMessage {
  /** The block's `id` field (the event's `seq`), if it had one. */
  id: string | undefined;
  /** The block's `event` field (the event's `type`), if it had one. */
  event: string | undefined;
  /** The block's `data` lines, joined by newlines. */
  data: string;
}

/** The blocks of a server-sent event stream, as they arrive; comments (keep-alives) are skipped. */
export async function* sseMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage, void, undefined> {
  const decoder = new TextDecoder();
  let buffer = "";
  let block: SseMessage = { id: undefined, event: undefined, data: "" };
  let hasData = false;
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
      if (line === "") {
        if (hasData) yield block;
        block = { id: undefined, event: undefined, data: "" };
        hasData = false;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "data") {
        block.data = hasData ? `${block.data}\n${value}` : value;
        hasData = true;
      } else if (name === "id") {
        block.id = value;
      } else if (name === "event") {
        block.event = value;
      }
    }
  }
}
