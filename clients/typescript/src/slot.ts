/**
 * Holding a slot: acquire with an id made here (so retries are safe), wait
 * through the queue with long-polls (which also hold the queued call),
 * heartbeat the lease in the background, and release when done.
 */

import "./dispose.js";

import type { Client } from "./client.js";
import {
  ApiError,
  CallEnded,
  DecodeError,
  EndedWhileQueued,
  QueueTimeout,
  TransportError,
} from "./errors.js";
import { describe, isAborted, NO_RETRY, newCallId } from "./http.js";
import type { Call, CallType, SlotKind } from "./types.js";

/** What {@link Client.slot} takes. */
export interface SlotOptions {
  /** The org whose slot to take. */
  org: string;
  /** The agent the call is for (no registration needed). */
  agent: string;
  /** The call's type. */
  type: CallType;
  /** The call's id; default one made here. Give your own (e.g. a phone call's id) to find it again. */
  id?: string;
  /** Seconds the call may wait in the queue; then {@link QueueTimeout}. Default: as long as it takes. */
  maxWait?: number;
  /** The lease, in seconds (5 to 3600, default 60): the slot comes back this long after the last heartbeat. */
  leaseTtl?: number;
  /** Seconds between heartbeats (default a third of the lease). */
  heartbeatEvery?: number;
  /**
   * Called with the queue position (1 = next) at once when the call is
   * queued and on every change, with the call as last read (its
   * `estimated_wait_s` says about how long is left).
   */
  onPosition?: (position: number, call: Call) => void;
  /** Cancels the wait: the queued call is cancelled on the server, and `slot()` rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * A call the org as configured now can never admit: `"queue"` it anyway
   * (the default; its `blocked` says why, and a change may admit it), or
   * `"refuse"` it: `slot()` rejects with {@link CallBlocked} and nothing is queued.
   */
  ifBlocked?: "queue" | "refuse";
}

/**
 * A slot held by this process: heartbeated in the background until
 * {@link Slot.release} (or the end of an `await using` block).
 */
export class Slot implements AsyncDisposable {
  /** The client it talks through. */
  readonly client: Client;
  /** Its org. */
  readonly org: string;
  /** Its call's id. */
  readonly id: string;
  /** The call as last seen (updated by each heartbeat). */
  call: Call;
  /** Heartbeats that succeeded. */
  heartbeats = 0;
  /**
   * Resolves when the slot is lost without us releasing it: with the call
   * as it ended (its lease ran out, or someone ended it), or null when the
   * server no longer knows the call. Only the server's word counts: while
   * it cannot be reached heartbeats go on trying, since a restarted server
   * restores its calls with a grace lease. Never rejects.
   */
  readonly lost: Promise<Call | null>;
  /** Aborted when the slot is lost (its reason a {@link SlotLost}): pass it to the work the slot is for. */
  readonly signal: AbortSignal;

  #lose: (call: Call | null) => void;
  #isLost = false;
  #lostController = new AbortController();
  #stop = new AbortController();
  #heartbeatLoop: Promise<void> | undefined;
  #released: Promise<Call> | undefined;

  /** @internal Made by {@link Client.slot}. */
  constructor(client: Client, org: string, call: Call) {
    this.client = client;
    this.org = org;
    this.id = call.id;
    this.call = call;
    this.signal = this.#lostController.signal;
    let resolve!: (call: Call | null) => void;
    this.lost = new Promise((r) => {
      resolve = r;
    });
    this.#lose = (ended) => {
      if (this.#isLost) return;
      this.#isLost = true;
      if (ended !== null) this.call = ended;
      resolve(ended);
      this.#lostController.abort(new SlotLost(this.id, ended));
    };
  }

  /** `reserved` or `shared`: the part of the pool the call was admitted to. */
  get kind(): SlotKind | null {
    return this.call.slot ?? null;
  }

  /** Whether the slot has been lost (see {@link Slot.lost}). */
  get isLost(): boolean {
    return this.#isLost;
  }

  /** Renews the lease now. {@link CallEnded} if the call has ended (the slot is then lost). */
  async heartbeat(): Promise<Call> {
    try {
      this.call = await this.client.heartbeat(this.org, this.id);
      this.heartbeats++;
      return this.call;
    } catch (e) {
      if (e instanceof CallEnded) this.#lose(e.call ?? null);
      throw e;
    }
  }

  /**
   * Gives the slot back (`DELETE`, retried through passing faults) and stops
   * the heartbeats; resolves with the call as it ended. Idempotent: a
   * second call returns the first one's answer.
   */
  release(): Promise<Call> {
    this.#released ??= (async () => {
      this.#stop.abort();
      await this.#heartbeatLoop;
      this.call = await this.client.release(this.org, this.id);
      return this.call;
    })();
    return this.#released;
  }

  /**
   * {@link Slot.release} that never throws: a release that fails after its
   * retries is reported as a process warning, and the lease frees the slot
   * soon anyway. What `await using` and {@link Client.withSlot} call.
   */
  async close(): Promise<void> {
    try {
      await this.release();
    } catch (e) {
      process.emitWarning(
        `slotgate: could not release call ${this.id} of ${this.org} (its lease frees it): ${describe(e)}`,
      );
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal Starts the background heartbeats, every `everyS` seconds. */
  startHeartbeats(everyS: number): void {
    this.#heartbeatLoop ??= this.#beat(everyS * 1000);
  }

  async #beat(everyMs: number): Promise<void> {
    const stop = this.#stop.signal;
    let delay = everyMs;
    while (!stop.aborted && !this.#isLost) {
      if (!(await pause(delay, stop))) return;
      try {
        this.call = await this.client.heartbeat(this.org, this.id, {
          retry: NO_RETRY,
          timeoutMs: Math.min(this.client.transport.timeoutMs, everyMs),
        });
        this.heartbeats++;
        delay = everyMs;
      } catch (e) {
        if (isAborted(stop)) return;
        if (e instanceof CallEnded) {
          this.#lose(e.call ?? null);
        } else if (e instanceof ApiError && e.code === "call_not_found") {
          this.#lose(null);
        } else if (isPassing(e)) {
          // Ask again soon: the server's answer, once it comes, decides.
          delay = Math.min(1000, everyMs) * (0.5 + Math.random() / 2);
        } else {
          // A refusal the next heartbeat may not get (e.g. a key revoked
          // and replaced): say so, and go on at the usual pace.
          process.emitWarning(`slotgate: heartbeat of call ${this.id} failed: ${describe(e)}`);
          delay = everyMs;
        }
      }
    }
  }
}

/** The reason {@link Slot.signal} aborts with: the slot was lost. */
export class SlotLost extends Error {
  override name = "SlotLost";
  /** The call as it ended, or null when the server no longer knows it. */
  readonly call: Call | null;
  constructor(id: string, call: Call | null) {
    super(`slot of call ${id} lost: ${call?.end_reason ?? "the server no longer knows the call"}`);
    this.call = call;
  }
}

/** A connection error or a 502/503/504: the same request may succeed later. */
function isPassing(e: unknown): boolean {
  return e instanceof TransportError || e instanceof DecodeError || (e instanceof ApiError && e.transient);
}

/** Waits `ms` without keeping the process alive; false if `signal` aborted first. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve(true);
    }, ms);
    timer.unref();
    const abort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener("abort", abort, { once: true });
  });
}

/** {@link Client.slot}: acquire, wait through the queue, start heartbeating. */
export async function acquireSlot(client: Client, opts: SlotOptions): Promise<Slot> {
  const { org, signal } = opts;
  signal?.throwIfAborted();
  const id = opts.id ?? newCallId();
  const leaseTtl = opts.leaseTtl ?? 60;
  // With a position to report, ask without waiting, so the first position
  // comes at once; else the acquire itself long-polls.
  const waitS = opts.onPosition === undefined ? client.longPollS : 0;
  let call: Call;
  try {
    ({ call } = await client.acquire(
      org,
      {
        id,
        agent: opts.agent,
        type: opts.type,
        lease_ttl_s: leaseTtl,
        max_wait_s: opts.maxWait,
        wait_s: waitS,
        if_blocked: opts.ifBlocked,
      },
      { signal },
    ));
  } catch (e) {
    // A refusal created nothing (and a conflicting id is someone else's
    // call); anything else may have queued the call: cancel it.
    if (!(e instanceof ApiError && !e.transient)) await endQuietly(client, org, id);
    throw e;
  }
  try {
    call = await waitInQueue(client, org, call, leaseTtl, opts);
  } catch (e) {
    // Cancelled, timed out or failed while waiting: do not leave the call
    // queued (or holding a slot admitted at the last moment).
    await endQuietly(client, org, id);
    throw e;
  }
  const slot = new Slot(client, org, call);
  slot.startHeartbeats(opts.heartbeatEvery ?? leaseTtl / 3);
  return slot;
}

/**
 * Long-polls the call while it is queued (each open poll holds it), reporting
 * positions; resolves with the active call. Through connection errors and
 * 503s (a server restarting) it keeps asking for up to two leases without an
 * answer: the server abandons a call unheld for a lease, and a restarted one
 * gives its calls a lease of grace.
 */
async function waitInQueue(
  client: Client,
  org: string,
  first: Call,
  leaseTtl: number,
  opts: SlotOptions,
): Promise<Call> {
  const { signal } = opts;
  let call = first;
  const report = positionReporter(opts.onPosition);
  report(call);
  const watch = new AbortController();
  if (opts.onPosition !== undefined && call.state === "queued") {
    void watchPositions(client, org, call.id, report, watch.signal);
  }
  try {
    let lastAnswer = Date.now();
    while (call.state === "queued") {
      try {
        call = await client.getCall(org, call.id, { waitS: client.longPollS, signal });
        lastAnswer = Date.now();
      } catch (e) {
        if (signal?.aborted === true) throw signal.reason;
        if (!isPassing(e) || Date.now() - lastAnswer > 2 * leaseTtl * 1000) throw e;
        await new Promise((r) => setTimeout(r, 250 + Math.random() * 750));
        signal?.throwIfAborted();
        continue;
      }
      report(call);
    }
  } finally {
    watch.abort();
  }
  if (call.state === "ended") {
    if (call.end_reason === "timed_out") throw new QueueTimeout(call);
    throw new EndedWhileQueued(call);
  }
  return call;
}

/** Calls `onPosition` with each new position of a queued call. */
function positionReporter(onPosition: SlotOptions["onPosition"]): (call: Call) => void {
  let last: number | undefined;
  return (call) => {
    if (onPosition === undefined || call.state !== "queued" || call.position == null) return;
    if (call.position === last) return;
    last = call.position;
    try {
      onPosition(call.position, call);
    } catch (e) {
      process.emitWarning(`slotgate: onPosition threw: ${describe(e)}`);
    }
  };
}

/**
 * Re-reads the call whenever the org's queue may have moved (a call left
 * it, or a slot was taken or freed), so every position is reported as it
 * changes, not only at the end of a long-poll. Stops when `stop` aborts or
 * the stream fails; the long-polls still report what they see.
 */
async function watchPositions(
  client: Client,
  org: string,
  id: string,
  report: (call: Call) => void,
  stop: AbortSignal,
): Promise<void> {
  const refresh = async (): Promise<void> => {
    try {
      report(await client.getCall(org, id, { signal: stop }));
    } catch {
      // The next event or long-poll tries again.
    }
  };
  try {
    const events = client.streamEvents(org, { signal: stop, onOpen: () => void refresh() });
    for await (const e of events) {
      // An arrival or a new lease length moves nobody (this call included).
      if (e.type === "call.queued" || e.type === "call.lease_changed") continue;
      if ("call" in e && e.call === id) return;
      await refresh();
    }
  } catch {
    // As above: the long-polls go on reporting.
  }
}

/** Ends the call if it exists, reporting a failure as a process warning. */
async function endQuietly(client: Client, org: string, id: string): Promise<void> {
  try {
    await client.release(org, id);
  } catch (e) {
    if (e instanceof ApiError && e.code === "call_not_found") return;
    process.emitWarning(`slotgate: could not end call ${id} of ${org} (its hold frees it): ${describe(e)}`);
  }
}
