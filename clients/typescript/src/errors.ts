/**
 * What can go wrong talking to slotgate, as error classes.
 *
 * Every refusal of the server is an {@link ApiError} with the API's `code`,
 * `status` and `message`, and the extras of its code (`available`,
 * `reserved`, `cap`, `call`) in `error`; two codes a caller branches on have
 * classes of their own: {@link CallEnded} and {@link CallBlocked}.
 */

import type { ApiErrorBody, Call, ErrorCode } from "./types.js";

/** Base of every error this package throws. */
export class SlotgateError extends Error {
  override name = "SlotgateError";
}

/**
 * A request did not complete (connection refused or reset, timed out) after
 * the retries that were safe to make.
 */
export class TransportError extends SlotgateError {
  override name = "TransportError";
}

/** The server answered with something the API does not promise. */
export class DecodeError extends SlotgateError {
  override name = "DecodeError";
}

/** The server refused: an HTTP status and the API's error code. */
export class ApiError extends SlotgateError {
  override name = "ApiError";
  /** The HTTP status, e.g. 409. */
  readonly status: number;
  /** The API's error code, e.g. `queue_full` (a string the API may add to). */
  readonly code: ErrorCode | (string & {});
  /** The whole `error` object of the answer, extras included. */
  readonly error: ApiErrorBody;
  /** Seconds from a `Retry-After` header, if any. */
  readonly retryAfterS: number | undefined;

  constructor(status: number, error: ApiErrorBody, retryAfterS?: number) {
    super(`${error.code} (${String(status)}): ${error.message}`);
    this.status = status;
    this.code = error.code;
    this.error = error;
    this.retryAfterS = retryAfterS;
  }

  /** A passing fault of the server: the same request may succeed later. */
  get transient(): boolean {
    return this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/** 410 `call_ended`: the call has ended; `call` is the call as it ended. */
export class CallEnded extends ApiError {
  override name = "CallEnded";
  /** The call as it ended (from `error.call`), when the server sent it. */
  get call(): Call | undefined {
    return this.error.call ?? undefined;
  }
}

/**
 * 409 `call_blocked`: the call could never be admitted as the org is set up
 * now (a limit of 0, a cap of 0, or no shared capacity for an agent without
 * a reservation), and the acquire asked to be refused rather than queued.
 */
export class CallBlocked extends ApiError {
  override name = "CallBlocked";
}

/** A queued call's `max_wait` passed before a slot came: it ended `timed_out`. */
export class QueueTimeout extends SlotgateError {
  override name = "QueueTimeout";
  /** The call as it ended. */
  readonly call: Call;
  constructor(call: Call) {
    super(`call ${call.id}: its max_wait passed in the queue`);
    this.call = call;
  }
}

/**
 * A queued call ended for a reason other than its `max_wait` (cancelled by
 * someone else, or abandoned: nobody held it for a whole lease).
 */
export class EndedWhileQueued extends SlotgateError {
  override name = "EndedWhileQueued";
  /** The call as it ended. */
  readonly call: Call;
  constructor(call: Call) {
    super(`call ${call.id} ended while queued: ${call.end_reason ?? "unknown reason"}`);
    this.call = call;
  }
}

/** The error an answer with this status and body stands for. */
export function apiError(status: number, body: unknown, retryAfterS?: number): ApiError {
  const error = errorObject(body) ?? {
    code: status >= 500 ? "internal" : "unknown",
    message: `HTTP ${String(status)} without an API error body`,
  };
  // `call_blocked` comes with the API's version 2: a string, not yet in ErrorCode.
  switch (error.code as string) {
    case "call_ended":
      return new CallEnded(status, error, retryAfterS);
    case "call_blocked":
      return new CallBlocked(status, error, retryAfterS);
    default:
      return new ApiError(status, error, retryAfterS);
  }
}

function errorObject(body: unknown): ApiErrorBody | undefined {
  if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
  const error: unknown = body.error;
  if (typeof error !== "object" || error === null) return undefined;
  if (!("code" in error) || typeof error.code !== "string") return undefined;
  if (!("message" in error) || typeof error.message !== "string") return undefined;
  return error as ApiErrorBody;
}
