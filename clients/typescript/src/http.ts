/**
 * One request to the API: its URL, its timeout, the retry of passing faults
 * (connection errors, 502/503/504) for requests safe to repeat, and the
 * decoding of the answer or of the API's error.
 */

import { randomBytes } from "node:crypto";
import { inspect } from "node:util";

import { apiError, ApiError, DecodeError, TransportError } from "./errors.js";

/** How passing faults (connection errors, 502/503/504) are retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The pause after the first failure, in ms; each next one doubles, up to `maxBackoffMs`. */
  backoffMs: number;
  /** The longest pause, in ms. */
  maxBackoffMs: number;
}

/** Six attempts over about six seconds. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, backoffMs: 200, maxBackoffMs: 3000 };

/** One attempt only. */
export const NO_RETRY: RetryPolicy = { attempts: 1, backoffMs: 0, maxBackoffMs: 0 };

/** The pause after failed attempt number `attempt` (from 1), with jitter, in ms. */
export function backoff(policy: RetryPolicy, attempt: number, retryAfterS?: number): number {
  const base = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.max(0, attempt - 1));
  const pause = base / 2 + (Math.random() * base) / 2;
  if (retryAfterS === undefined) return pause;
  return Math.max(pause, Math.min(retryAfterS * 1000, policy.maxBackoffMs));
}

/** A call id made by the client, so that a retried acquire is the same call. */
export function newCallId(): string {
  return `call_${randomBytes(12).toString("hex")}`;
}

/** One path segment, percent-encoded. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** Waits `ms`, or less if `signal` aborts (then throws its reason). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const done = (): void => {
      signal?.removeEventListener("abort", abort);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const abort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/** What a request needs besides its method and path. */
export interface RequestOptions {
  /** Query parameters; undefined ones are left out. */
  query?: Record<string, string | number | undefined> | undefined;
  /** A JSON body. */
  body?: unknown;
  /** Seconds the server may hold the request (a long-poll): added to the timeout. */
  waitS?: number | undefined;
  /**
   * Safe to send twice (reads, idempotent writes, acquires with an id). A
   * request that is not is retried only when it certainly never reached
   * the server (the connection was refused).
   */
  idempotent?: boolean | undefined;
  /** The retry policy, instead of the client's. */
  retry?: RetryPolicy | undefined;
  /** The timeout of one attempt in ms (the long-poll's wait is added), instead of the client's. */
  timeoutMs?: number | undefined;
  /** Cancels the request: it then rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Extra headers. */
  headers?: Record<string, string> | undefined;
}

/** A successful answer: its status and its decoded JSON (undefined for no body). */
export interface Answer<T> {
  status: number;
  body: T;
  response: Response;
}

/** The connection settings every request shares. */
export interface Transport {
  /** The server's base URL, without a trailing slash. */
  url: string;
  /** The `Authorization` header's value. */
  authorization: string;
  timeoutMs: number;
  retry: RetryPolicy;
  fetch: typeof fetch;
}

/**
 * Sends one request to `transport.url + path`, retrying passing faults as
 * `opts` allows, and returns the answer; throws {@link ApiError} for a
 * refusal and {@link TransportError} when no answer came.
 * `stream: true` leaves the body unread (for server-sent events).
 */
export async function send<T>(
  transport: Transport,
  method: string,
  path: string,
  opts: RequestOptions & { stream?: boolean } = {},
): Promise<Answer<T>> {
  const policy = opts.retry ?? transport.retry;
  const idempotent = opts.idempotent ?? true;
  const url = new URL(transport.url + path);
  for (const [k, v] of Object.entries(opts.query ?? {})) {
    if (v !== undefined) url.searchParams.set(k, String(v));
  }
  const headers: Record<string, string> = {
    authorization: transport.authorization,
    ...opts.headers,
  };
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  // AbortSignal.timeout takes whole milliseconds.
  const timeoutMs = Math.ceil((opts.timeoutMs ?? transport.timeoutMs) + (opts.waitS ?? 0) * 1000);
  for (let attempt = 1; ; attempt++) {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal === undefined ? timeout : anySignal([opts.signal, timeout]);
    let response: Response;
    try {
      response = await transport.fetch(url, { method, headers, body, signal });
    } catch (e) {
      if (opts.signal?.aborted === true) throw opts.signal.reason;
      const unsent = isUnsent(e);
      if ((idempotent || unsent) && attempt < policy.attempts) {
        await sleep(backoff(policy, attempt), opts.signal);
        continue;
      }
      const why = timeout.aborted ? `timed out after ${String(timeoutMs)} ms` : describe(e);
      throw new TransportError(`${method} ${path}: ${why}`, { cause: e });
    }
    if (response.status >= 400) {
      const err = await errorOf(response);
      if (err.transient && idempotent && attempt < policy.attempts) {
        await sleep(backoff(policy, attempt, err.retryAfterS), opts.signal);
        continue;
      }
      throw err;
    }
    if (opts.stream === true) return { status: response.status, body: undefined as T, response };
    try {
      return { status: response.status, body: (await decode(response)) as T, response };
    } catch (e) {
      if (e instanceof DecodeError) throw e;
      if (opts.signal?.aborted === true) throw opts.signal.reason;
      // The connection broke while the body was read: as a connection error.
      if (idempotent && attempt < policy.attempts) {
        await sleep(backoff(policy, attempt), opts.signal);
        continue;
      }
      throw new TransportError(`${method} ${path}: ${describe(e)}`, { cause: e });
    }
  }
}

async function decode(response: Response): Promise<unknown> {
  const text = await response.text();
  if (response.status === 204 || text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DecodeError(`${response.url}: the answer is not JSON: ${describe(e)}`);
  }
}

/** The API error of an answer with a status of 400 or more. */
export async function errorOf(response: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = JSON.parse(await response.text());
  } catch {
    body = undefined;
  }
  const header = response.headers.get("retry-after");
  const retryAfter = header === null ? undefined : Number(header);
  return apiError(
    response.status,
    body,
    retryAfter !== undefined && Number.isFinite(retryAfter) ? retryAfter : undefined,
  );
}

/** The request certainly never reached the server. */
function isUnsent(e: unknown): boolean {
  const code = errorCode(e);
  return code === "ECONNREFUSED" || code === "UND_ERR_CONNECT_TIMEOUT";
}

function errorCode(e: unknown): string | undefined {
  for (let cause = e; typeof cause === "object" && cause !== null; ) {
    if ("code" in cause && typeof cause.code === "string") return cause.code;
    cause = "cause" in cause ? cause.cause : undefined;
  }
  return undefined;
}

/** An error and its causes, in one line. */
export function describe(e: unknown): string {
  const parts: string[] = [];
  for (let cause = e; cause !== undefined && cause !== null && parts.length < 4; ) {
    parts.push(cause instanceof Error ? cause.message : inspect(cause));
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return parts.join(": ");
}

/** Whether `signal` has aborted (read afresh: TypeScript's narrowing does not see it change across awaits). */
export function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** A signal that aborts when any of `signals` does (`AbortSignal.any`, from Node 20.3). */
export function anySignal(signals: AbortSignal[]): AbortSignal {
  if (typeof AbortSignal.any === "function") return AbortSignal.any(signals);
  const controller = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => { controller.abort(s.reason); }, { once: true });
  }
  return controller.signal;
}
