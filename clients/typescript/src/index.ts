/**
 * slotgate for TypeScript: hold one of your org's concurrent-call slots,
 * waiting through the queue, with the lease kept alive and the slot given
 * back; and the whole HTTP API for admin tools.
 *
 * Layout: `client.ts` (the {@link Client}, one method per endpoint),
 * `slot.ts` (holding a slot), `http.ts` (requests and retries), `sse.ts`
 * (server-sent events), `errors.ts`, `types.ts` (the API's types, by name,
 * from `generated/openapi.ts`), and `testing.ts` (the `slotgate/testing`
 * entry: runs the real server for tests).
 */

import "./dispose.js";

export { Client, LONG_POLL_S } from "./client.js";
export type { Acquired, ClientOptions, ListOptions, StreamOptions } from "./client.js";
export { Slot, SlotLost } from "./slot.js";
export type { SlotOptions } from "./slot.js";
export {
  ApiError,
  CallBlocked,
  CallEnded,
  DecodeError,
  EndedWhileQueued,
  QueueTimeout,
  SlotgateError,
  TransportError,
} from "./errors.js";
export { DEFAULT_RETRY, NO_RETRY, newCallId } from "./http.js";
export type { RetryPolicy } from "./http.js";
export type * from "./types.js";
export type { components, operations, paths } from "./generated/openapi.js";
