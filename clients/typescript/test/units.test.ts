/** The pieces that need no server: error mapping, the SSE reader, backoff. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { apiError } from "../src/errors.js";
import { backoff, DEFAULT_RETRY } from "../src/http.js";
import { ApiError, CallBlocked, CallEnded } from "../src/index.js";
import { sseMessages } from "../src/sse.js";

test("error answers become classes by the API's code", () => {
  const blocked = apiError(409, { error: { code: "call_blocked", message: "no shared capacity" } });
  assert.ok(blocked instanceof CallBlocked && blocked instanceof ApiError);
  assert.deepEqual([blocked.status, blocked.code, blocked.message], [409, "call_blocked", "call_blocked (409): no shared capacity"]);
  const call = { id: "c", state: "ended", end_reason: "expired" };
  const ended = apiError(410, { error: { code: "call_ended", message: "ended", call } });
  assert.ok(ended instanceof CallEnded);
  assert.equal(ended.call?.end_reason, "expired");
  const unavailable = apiError(503, { error: { code: "store_unavailable", message: "down" } }, 2);
  assert.deepEqual([unavailable.transient, unavailable.retryAfterS], [true, 2]);
  const bare = apiError(502, "<html>bad gateway</html>");
  assert.deepEqual([bare.code, bare.transient], ["internal", true]);
  assert.equal(apiError(409, { error: { code: "queue_full", message: "full" } }).transient, false);
});

test("the SSE reader joins blocks split anywhere and skips keep-alives", async () => {
  const text = ": keep-alive\n\nid: 1\nevent: call.queued\ndata: {\"seq\":1}\n\r\nid: 2\ndata: a\ndata: b\n\n";
  // Every split of the text into two chunks gives the same blocks.
  for (let cut = 0; cut <= text.length; cut++) {
    const bytes = new TextEncoder().encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes.slice(0, cut));
        c.enqueue(bytes.slice(cut));
        c.close();
      },
    });
    const blocks = [];
    for await (const m of sseMessages(stream)) blocks.push(m);
    assert.deepEqual(blocks, [
      { id: "1", event: "call.queued", data: "{\"seq\":1}" },
      { id: "2", event: undefined, data: "a\nb" },
    ], `cut at ${cut}`);
  }
});

test("backoff doubles up to its bound, honours Retry-After within it, and jitters", () => {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const base = Math.min(DEFAULT_RETRY.maxBackoffMs, DEFAULT_RETRY.backoffMs * 2 ** (attempt - 1));
    const pause = backoff(DEFAULT_RETRY, attempt);
    assert.ok(pause >= base / 2 && pause <= base, `attempt ${attempt}: ${pause}`);
  }
  assert.ok(backoff(DEFAULT_RETRY, 1, 2) >= 2000);
  assert.ok(backoff(DEFAULT_RETRY, 1, 60) <= DEFAULT_RETRY.maxBackoffMs);
});
