/**
 * The client: one method per endpoint of the API (the plain API, for admin
 * tools and webhook code), and {@link Client.slot} / {@link Client.withSlot}
 * to hold a slot for a piece of work.
 */

import { ApiError, DecodeError, TransportError } from "./errors.js";
import {
  type Answer,
  backoff,
  DEFAULT_RETRY,
  describe,
  isAborted,
  NO_RETRY,
  newCallId,
  type RequestOptions,
  type RetryPolicy,
  seg,
  send,
  sleep,
  type Transport,
} from "./http.js";
import { acquireSlot, type SlotOptions, type Slot } from "./slot.js";
import { sseMessages } from "./sse.js";
import type {
  AcquireCall,
  Agent,
  Call,
  CallList,
  CallState,
  Caps,
  CreateKey,
  CreateOrg,
  CreatePlan,
  Event,
  EventPage,
  HistoryPage,
  KeyInfo,
  KeyList,
  NewKey,
  Org,
  OrgList,
  Page,
  PerType,
  Plan,
  PlanList,
  UpdatePlan,
  Usage,
} from "./types.js";

/** How long one long-poll asks the server to wait, in seconds (the server allows 60). */
export const LONG_POLL_S = 20;

/** What {@link Client} is made with. */
export interface ClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:7878`. */
  url: string;
  /** An operator or org key. */
  key: string;
  /** The timeout of one request in ms, a long-poll's wait not counted (default 10 s). */
  timeoutMs?: number;
  /** How connection errors and 502/503/504 are retried (default {@link DEFAULT_RETRY}). */
  retry?: RetryPolicy;
  /** How long one long-poll of a queued call waits, in seconds (default 20, at most 60). */
  longPollS?: number;
  /** The `fetch` to use (default the platform's). */
  fetch?: typeof fetch;
}

/** The answer to an acquire: the call, and whether it was admitted (201), queued (202) or existed (200). */
export interface Acquired {
  /** 201 admitted, 202 queued, 200 the id existed (an idempotent retry): its current state. */
  status: number;
  call: Call;
}

/** Options of a list: a page size and where to start. */
export interface ListOptions {
  /** At most this many (default 1000, at most 10000). */
  limit?: number;
  /** Where the previous page ended (its `nextCursor`). */
  cursor?: string;
}

/** Options of {@link Client.streamEvents}. */
export interface StreamOptions {
  /**
   * Replay the events with a larger seq first; without it only events
   * from now on come. Sent as `Last-Event-ID`, as a reconnecting
   * EventSource does; the client sends the last seq it saw when it
   * reconnects.
   */
  after?: number;
  /** Ends the stream (the iteration then returns). */
  signal?: AbortSignal;
  /**
   * Reconnect when the connection breaks or the server ends the stream
   * (a replica that stops serving does), resuming after the last event
   * seen; default true. Gives up after the retry policy's attempts fail in a row.
   */
  reconnect?: boolean;
  /** Called once the stream is open (subscribed: nothing from then on is missed). */
  onOpen?: () => void;
}

/**
 * A slotgate client. `new Client({url, key})`; it holds no connection of its
 * own (the platform's `fetch` pools them), so there is nothing to close.
 */
export class Client {
  /** The connection settings every request shares. */
  readonly transport: Transport;
  /** How long one long-poll of a queued call waits, in seconds. */
  readonly longPollS: number;

  constructor(opts: ClientOptions) {
    this.transport = {
      url: opts.url.replace(/\/+$/, ""),
      authorization: `Bearer ${opts.key}`,
      timeoutMs: opts.timeoutMs ?? 10_000,
      retry: opts.retry ?? DEFAULT_RETRY,
      fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
    };
    this.longPollS = Math.min(60, opts.longPollS ?? LONG_POLL_S);
  }

  /** One request to `/v1` + `path`; its decoded JSON answer. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return (await send<T>(this.transport, method, `/v1${path}`, opts)).body;
  }

  // ----- operations -----

  /** `GET /healthz`: true when the server serves (false on 503). */
  async health(): Promise<boolean> {
    try {
      const r = await this.transport.fetch(`${this.transport.url}/healthz`, {
        signal: AbortSignal.timeout(this.transport.timeoutMs),
      });
      await r.body?.cancel();
      return r.status === 200;
    } catch (e) {
      throw new TransportError(`GET /healthz: ${describe(e)}`, { cause: e });
    }
  }

  /** `GET /metrics`: the Prometheus text. */
  async metrics(): Promise<string> {
    const r = await send(this.transport, "GET", "/metrics", { stream: true });
    return r.response.text();
  }

  /** `GET /v1/openapi.json`: the API as OpenAPI 3. */
  openapi(): Promise<Record<string, unknown>> {
    return this.request("GET", "/openapi.json");
  }

  // ----- orgs and reservations -----

  /**
   * Creates an org (operator key). Not retried once it may have reached the
   * server: a repeat would answer `org_exists`.
   */
  createOrg(org: CreateOrg): Promise<Org> {
    return this.request("POST", "/orgs", { body: org, idempotent: false });
  }

  /** One page of orgs (operator key). */
  async listOrgs(opts: ListOptions = {}): Promise<Page<Org>> {
    const page = await this.request<OrgList>("GET", "/orgs", { query: { ...opts } });
    return { items: page.orgs, nextCursor: page.next_cursor ?? null };
  }

  /** An org's concurrency snapshot. */
  getOrg(org: string): Promise<Org> {
    return this.request("GET", `/orgs/${seg(org)}`);
  }

  /**
   * Sets an org's own limit, overriding its plan's (operator key); 409
   * `limit_below_reservations` if below them. `null` returns it to its
   * plan's limit (409 `no_plan` for an org on no plan).
   */
  setLimit(org: string, limit: number | null): Promise<Org> {
    return this.request("PUT", `/orgs/${seg(org)}/limit`, { body: { limit } });
  }

  /**
   * Sets an org's own burst, the slots it may use above its limit once the
   * whole limit is in use (operator key). `null` returns it to its plan's.
   */
  setBurst(org: string, burst: number | null): Promise<Org> {
    return this.request("PUT", `/orgs/${seg(org)}/burst`, { body: { burst } });
  }

  // ----- plans -----

  /** Every plan, with how many orgs are on each (operator key). */
  async listPlans(): Promise<Plan[]> {
    return (await this.request<PlanList>("GET", "/plans")).plans;
  }

  /** One plan (operator key); 404 `plan_not_found` if there is none. */
  getPlan(plan: string): Promise<Plan> {
    return this.request("GET", `/plans/${seg(plan)}`);
  }

  /** Creates a plan (operator key); 409 `plan_exists` if the id is taken. */
  createPlan(plan: CreatePlan): Promise<Plan> {
    return this.request("POST", "/plans", { body: plan, idempotent: false });
  }

  /**
   * Changes a plan's limit or burst, and with it every org on it that takes
   * them, in one change; or refuses it whole (409 `plan_below_reservations`,
   * naming the orgs in the way as `error.orgs` and `error.count`) and
   * changes nothing (operator key).
   */
  updatePlan(plan: string, change: UpdatePlan): Promise<Plan> {
    return this.request("PATCH", `/plans/${seg(plan)}`, { body: change });
  }

  /** Deletes a plan; 409 `plan_in_use` while orgs are on it (operator key). */
  async deletePlan(plan: string): Promise<void> {
    await this.request("DELETE", `/plans/${seg(plan)}`, { idempotent: false });
  }

  /**
   * Puts an org on a plan: it takes the plan's limit and burst (its own are
   * cleared); `null` takes it off plans, keeping them as its own (operator key).
   */
  setOrgPlan(org: string, plan: string | null): Promise<Org> {
    return this.request("PUT", `/orgs/${seg(org)}/plan`, { body: { plan } });
  }

  /**
   * Sets an agent's caps, all five at once (one left out or null: no cap);
   * 409 `cap_below_reservation` (with `error.reserved`, the lowest allowed)
   * if a cap would be below the reservation it covers.
   */
  setCaps(org: string, agent: string, caps: Partial<Caps>): Promise<Agent> {
    return this.request("PUT", `/orgs/${seg(org)}/agents/${seg(agent)}/caps`, { body: caps });
  }

  /** One agent (zeros everywhere if never seen). */
  getAgent(org: string, agent: string): Promise<Agent> {
    return this.request("GET", `/orgs/${seg(org)}/agents/${seg(agent)}`);
  }

  /**
   * Sets an agent's four reservations (a type left out is 0); 409
   * `reservations_exceed_limit` (with `error.available`) if the org's sum would pass its limit.
   */
  setReservations(org: string, agent: string, reservations: Partial<PerType>): Promise<Agent> {
    const path = `/orgs/${seg(org)}/agents/${seg(agent)}/reservations`;
    return this.request("PUT", path, { body: reservations });
  }

  /** Sets an agent's reservations to 0: its slots return to the shared pool at once. */
  removeReservations(org: string, agent: string): Promise<Agent> {
    return this.request("DELETE", `/orgs/${seg(org)}/agents/${seg(agent)}/reservations`);
  }

  /** Active and queued calls over the last minutes (the dashboard's chart). */
  history(org: string): Promise<HistoryPage> {
    return this.request("GET", `/orgs/${seg(org)}/history`);
  }

  /**
   * The org's usage by UTC hour (`step: "1h"`, the default) or day (`"1d"`)
   * from `from` to `to` (RFC 3339 UTC): peaks, seconds at the limit, burst,
   * calls admitted, waited and given up, per call type and overall. Org
   * admin or operator key.
   */
  usage(org: string, opts: { from?: string; to?: string; step?: "1h" | "1d" } = {}): Promise<Usage> {
    return this.request("GET", `/orgs/${seg(org)}/usage`, {
      query: { from: opts.from, to: opts.to, step: opts.step },
    });
  }

  // ----- calls -----

  /**
   * `POST /v1/orgs/{org}/calls`: admitted at once (or within `wait_s`), or
   * queued. The id is made here when not given, so the request is retried
   * safely through connection errors and 503s: the same id again is the
   * same call. Nothing heartbeats or releases it: see {@link Client.slot}.
   */
  async acquire(
    org: string,
    call: Omit<AcquireCall, "id"> & { id?: string },
    opts: { signal?: AbortSignal } = {},
  ): Promise<Acquired> {
    const body = { ...call, id: call.id ?? newCallId() };
    const answer: Answer<Call> = await send(this.transport, "POST", `/v1/orgs/${seg(org)}/calls`, {
      body,
      waitS: body.wait_s ?? 0,
      signal: opts.signal,
    });
    return { status: answer.status, call: answer.body };
  }

  /** One call; with `waitS` (up to 60), blocks while it is queued, and holds it meanwhile. */
  getCall(org: string, id: string, opts: { waitS?: number; signal?: AbortSignal } = {}): Promise<Call> {
    const waitS = opts.waitS !== undefined && opts.waitS > 0 ? opts.waitS : undefined;
    return this.request("GET", `/orgs/${seg(org)}/calls/${seg(id)}`, {
      query: { wait_s: waitS },
      waitS,
      signal: opts.signal,
    });
  }

  /**
   * Renews a call's lease (or a queued call's hold); {@link CallEnded} (with
   * the call) once it has ended.
   */
  heartbeat(
    org: string,
    id: string,
    opts: { leaseTtlS?: number; retry?: RetryPolicy; timeoutMs?: number } = {},
  ): Promise<Call> {
    const body = opts.leaseTtlS === undefined ? {} : { lease_ttl_s: opts.leaseTtlS };
    return this.request("POST", `/orgs/${seg(org)}/calls/${seg(id)}/heartbeat`, {
      body,
      retry: opts.retry,
      timeoutMs: opts.timeoutMs,
    });
  }

  /** Ends a call: `released` if active, `cancelled` if queued; an ended call answers as it ended. */
  release(org: string, id: string): Promise<Call> {
    return this.request("DELETE", `/orgs/${seg(org)}/calls/${seg(id)}`);
  }

  /** One page of live calls: active ones, then queued ones in queue order. */
  async listCalls(
    org: string,
    opts: ListOptions & { state?: Exclude<CallState, "ended">; agent?: string } = {},
  ): Promise<Page<Call>> {
    const page = await this.request<CallList>("GET", `/orgs/${seg(org)}/calls`, {
      query: { ...opts },
    });
    return { items: page.calls, nextCursor: page.next_cursor ?? null };
  }

  // ----- keys -----

  /**
   * Creates an org key; its secret is in this answer only. Not retried once
   * it may have reached the server (a repeat would make a second key).
   */
  createKey(org: string, key: CreateKey): Promise<NewKey> {
    return this.request("POST", `/orgs/${seg(org)}/keys`, { body: key, idempotent: false });
  }

  /** One page of an org's keys. */
  async listKeys(org: string, opts: ListOptions = {}): Promise<Page<KeyInfo>> {
    const page = await this.request<KeyList>("GET", `/orgs/${seg(org)}/keys`, {
      query: { ...opts },
    });
    return { items: page.keys, nextCursor: page.next_cursor ?? null };
  }

  /** Revokes a key: it stops working at once. A retry that finds it gone is a success. */
  async revokeKey(org: string, id: string): Promise<void> {
    const path = `/orgs/${seg(org)}/keys/${seg(id)}`;
    try {
      await this.request("DELETE", path, { retry: NO_RETRY });
      return;
    } catch (e) {
      if (!(e instanceof TransportError) && !(isApiError(e) && e.transient)) throw e;
    }
    try {
      await this.request("DELETE", path);
    } catch (e) {
      // The first attempt may have revoked it.
      if (!(isApiError(e) && e.code === "key_not_found")) throw e;
    }
  }

  // ----- events -----

  /** Events with a seq above `after`, oldest first; with `waitS` (up to 60), long-polls while there are none. */
  events(
    org: string,
    opts: { after?: number; limit?: number; waitS?: number; signal?: AbortSignal } = {},
  ): Promise<EventPage> {
    const waitS = opts.waitS !== undefined && opts.waitS > 0 ? opts.waitS : undefined;
    return this.request("GET", `/orgs/${seg(org)}/events`, {
      query: { after: opts.after, limit: opts.limit, wait_s: waitS },
      waitS,
      signal: opts.signal,
    });
  }

  /**
   * Every event after `after`, then each new one as it happens, by
   * long-polls; ends when `signal` aborts.
   */
  async *followEvents(
    org: string,
    opts: { after?: number; waitS?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<Event, void, undefined> {
    let after = opts.after ?? 0;
    while (!isAborted(opts.signal)) {
      let page: EventPage;
      try {
        page = await this.events(org, { after, waitS: opts.waitS ?? this.longPollS, signal: opts.signal });
      } catch (e) {
        if (isAborted(opts.signal)) return;
        throw e;
      }
      yield* page.events;
      after = page.next;
    }
  }

  /**
   * The org's events as server-sent events (`GET /v1/orgs/{org}/events/stream`),
   * reconnecting with `Last-Event-ID` when the connection breaks, so no
   * event is missed or seen twice. Ends when `signal` aborts.
   */
  async *streamEvents(org: string, opts: StreamOptions = {}): AsyncGenerator<Event, void, undefined> {
    const reconnect = opts.reconnect ?? true;
    const policy = this.transport.retry;
    let last = opts.after;
    let failures = 0;
    const path = `/v1/orgs/${seg(org)}/events/stream`;
    while (!isAborted(opts.signal)) {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (last !== undefined) headers["last-event-id"] = String(last);
      try {
        const answer = await send(this.transport, "GET", path, {
          headers,
          stream: true,
          signal: opts.signal,
          retry: NO_RETRY,
          // The stream stays open; only connecting is bounded.
          timeoutMs: 24 * 3600 * 1000,
        });
        const body = answer.response.body;
        if (body === null) throw new DecodeError(`GET ${path}: an empty answer`);
        opts.onOpen?.();
        for await (const message of sseMessages(body)) {
          failures = 0;
          let event: Event;
          try {
            event = JSON.parse(message.data) as Event;
          } catch (e) {
            throw new DecodeError(`GET ${path}: an event that is not JSON: ${describe(e)}`);
          }
          last = event.seq;
          yield event;
        }
      } catch (e) {
        if (isAborted(opts.signal)) return;
        if (!reconnect || !(e instanceof TransportError || isConnectionError(e) || isTransientApiError(e))) {
          throw e;
        }
        failures++;
        if (failures >= policy.attempts) throw e;
        await sleep(backoff(policy, failures), opts.signal).catch(() => undefined);
        continue;
      }
      if (!reconnect) return;
    }
  }

  // ----- holding a slot -----

  /**
   * Acquires a slot and waits for it through the queue; resolves with a
   * {@link Slot} once the call is active. The slot is heartbeated in the
   * background until released: `await using slot = await client.slot(...)`
   * releases it at the end of the block, or call `slot.release()`.
   *
   * Throws {@link QueueTimeout} when `maxWait` passes, {@link CallBlocked}
   * when the org could never admit the call and the server refused it,
   * the signal's reason when `signal` aborts (the queued call is then
   * cancelled on the server), and {@link ApiError} for other refusals.
   */
  slot(opts: SlotOptions): Promise<Slot> {
    return acquireSlot(this, opts);
  }

  /**
   * Holds a slot while `work(slot)` runs and releases it after, whether
   * `work` returned or threw; returns what `work` returned.
   */
  async withSlot<T>(opts: SlotOptions, work: (slot: Slot) => Promise<T> | T): Promise<T> {
    const slot = await this.slot(opts);
    try {
      return await work(slot);
    } finally {
      await slot.close();
    }
  }
}

function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

function isTransientApiError(e: unknown): boolean {
  return e instanceof ApiError && e.transient;
}

/** A body read that broke off (the server went away mid-stream). */
function isConnectionError(e: unknown): boolean {
  return e instanceof TypeError || (e instanceof Error && "code" in e);
}
