/**
 * Answering phone calls from Twilio-style webhooks, with slotgate deciding
 * which caller talks to an agent now and who waits on hold.
 *
 * Each phone number's voice webhook points at `POST /voice/{org}/{agent}/incoming`
 * (the org that owns the number and the agent that answers it) and its
 * status callback at `POST /voice/{org}/status`; the provider sends form
 * fields (`CallSid`, `CallStatus`) and runs the XML markup we answer with.
 *
 * - incoming: acquire a slot with the provider's call id (`CallSid`) as the
 *   call id, without waiting. Admitted: connect the caller to the agent's
 *   media stream. Queued: "you are number N in line", hold music, and a
 *   redirect to the wait endpoint. Refused (the queue is full, or the org
 *   could never admit the call): a polite goodbye.
 * - wait: long-poll slotgate for a while (the open poll holds the queued
 *   call); connect the moment the slot is the caller's, else more hold
 *   music and back again; when `max_wait` passes, apologise and hang up.
 * - status (completed, failed, busy, no-answer, canceled): release the
 *   slot, or cancel the queued call of a caller who hung up on hold.
 *
 * Connected calls are heartbeated by this process until their status
 * callback comes. A webhook the provider retries carries the same
 * `CallSid`, so it is the same call: it never takes a second slot.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

import { ApiError, CallBlocked, type Call, CallEnded, Client } from "slotgate";

/** The provider's final call statuses: the call is over, whatever it was doing. */
const FINAL_STATUSES = new Set(["completed", "failed", "busy", "no-answer", "canceled"]);

/** What the app needs to know; `settingsFromEnv()` reads them from the environment. */
export interface Settings {
  /** slotgate's URL. */
  slotgateUrl: string;
  /** A key that may make calls in the orgs this app serves (an org `runtime` key). */
  slotgateKey: string;
  /** Where the provider streams an answered call's audio; the agent runs there. */
  mediaUrl: string;
  /** A short hold-music clip; the caller hears it between two waits. */
  holdMusicUrl: string;
  /** Longest time a caller waits on hold, in seconds, before a polite goodbye. */
  maxWaitS: number;
  /** How long one wait webhook long-polls slotgate, in seconds (under the provider's webhook timeout). */
  holdPollS: number;
  /** The slot's lease, in seconds; heartbeats renew it every third of it. */
  leaseTtlS: number;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): Settings {
  return {
    slotgateUrl: env.SLOTGATE_URL ?? "http://127.0.0.1:7878",
    slotgateKey: env.SLOTGATE_KEY ?? "",
    mediaUrl: env.MEDIA_URL ?? "wss://media.example.com/stream",
    holdMusicUrl: env.HOLD_MUSIC_URL ?? "https://media.example.com/hold.mp3",
    maxWaitS: Number(env.MAX_WAIT_S ?? 120),
    holdPollS: Number(env.HOLD_POLL_S ?? 10),
    leaseTtlS: Number(env.LEASE_TTL_S ?? 60),
  };
}

// ----- the markup the provider executes -----

function escapeXml(text: string): string {
  const entities: Record<string, string> = { "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" };
  return text.replace(/[<>&"']/g, (c) => entities[c] ?? c);
}

function twiml(...verbs: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Response>${verbs.join("")}</Response>`;
}

/** Connects the caller to the agent's media stream. */
export function connect(settings: Settings, org: string, call: Call): string {
  const url = new URL(settings.mediaUrl);
  url.search = new URLSearchParams({ org, agent: call.agent, call: call.id }).toString();
  return twiml(`<Connect><Stream url="${escapeXml(url.toString())}"/></Connect>`);
}

/** Where the caller stands, hold music, then back to the wait endpoint. */
export function hold(settings: Settings, org: string, position: number | null | undefined): string {
  const say =
    position == null
      ? "<Say>All our agents are still busy. Thank you for holding.</Say>"
      : `<Say>All our agents are busy. You are number ${String(position)} in line.</Say>`;
  return twiml(
    say,
    `<Play>${escapeXml(settings.holdMusicUrl)}</Play>`,
    `<Redirect method="POST">/voice/${encodeURIComponent(org)}/wait</Redirect>`,
  );
}

/** A polite message, then the line is hung up. */
export function goodbye(message: string): string {
  return twiml(`<Say>${escapeXml(message)}</Say>`, "<Hangup/>");
}

const BUSY = "We are receiving too many calls right now. Please call again later. Goodbye.";
const TIMED_OUT = "All our agents are still busy. We are sorry to keep you waiting: please call again later. Goodbye.";

// ----- keeping connected calls alive -----

/** Heartbeats every connected call of this process until its status callback comes. */
class KeepAlive {
  readonly calls = new Map<string, { org: string; id: string }>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly client: Client,
    everyS: number,
  ) {
    this.#timer = setInterval(() => void this.beat(), everyS * 1000);
    this.#timer.unref();
  }

  add(org: string, id: string): void {
    this.calls.set(`${org}/${id}`, { org, id });
  }

  remove(org: string, id: string): void {
    this.calls.delete(`${org}/${id}`);
  }

  async beat(): Promise<void> {
    await Promise.all(
      [...this.calls.values()].map(async ({ org, id }) => {
        try {
          await this.client.heartbeat(org, id);
        } catch (e) {
          if (e instanceof CallEnded || (e instanceof ApiError && e.code === "call_not_found")) {
            // The slot is gone (e.g. the lease ran out while this process was
            // stuck): a real platform would hang the call up through the
            // provider's REST API here.
            console.warn(`call ${org}/${id} lost its slot`);
            this.remove(org, id);
          }
          // Anything else is passing: the next beat tries again.
        }
      }),
    );
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

// ----- the app -----

/** The webhooks as a Node.js HTTP server (not yet listening), and what it holds. */
export interface App {
  server: Server;
  client: Client;
  keepAlive: KeepAlive;
  /** Stops the heartbeats and closes the server. */
  close(): Promise<void>;
}

export function createApp(settings: Settings): App {
  const client = new Client({ url: settings.slotgateUrl, key: settings.slotgateKey });
  const keepAlive = new KeepAlive(client, settings.leaseTtlS / 3);

  const connected = (org: string, call: Call): string => {
    keepAlive.add(org, call.id);
    return connect(settings, org, call);
  };

  async function incoming(org: string, agent: string, form: URLSearchParams, url: URL): Promise<string> {
    const sid = required(form, "CallSid");
    const maxWait = Number(url.searchParams.get("max_wait") ?? settings.maxWaitS);
    let call: Call;
    try {
      ({ call } = await client.acquire(org, {
        id: sid,
        agent,
        type: "inbound",
        lease_ttl_s: settings.leaseTtlS,
        max_wait_s: maxWait,
      }));
    } catch (e) {
      if (e instanceof CallBlocked || (e instanceof ApiError && e.code === "queue_full")) return goodbye(BUSY);
      throw e;
    }
    if (call.state === "active") return connected(org, call);
    if (call.state === "queued") return hold(settings, org, call.position);
    // A retried webhook for a call that is over already.
    return goodbye("Goodbye.");
  }

  async function wait(org: string, form: URLSearchParams): Promise<string> {
    const sid = required(form, "CallSid");
    let call: Call;
    try {
      call = await client.getCall(org, sid, { waitS: settings.holdPollS });
    } catch (e) {
      if (e instanceof ApiError && e.code === "call_not_found") return goodbye("Goodbye.");
      throw e;
    }
    if (call.state === "active") return connected(org, call);
    if (call.state === "queued") return hold(settings, org, call.position);
    if (call.end_reason === "timed_out") return goodbye(TIMED_OUT);
    return goodbye("Goodbye.");
  }

  async function status(org: string, form: URLSearchParams): Promise<void> {
    const sid = required(form, "CallSid");
    if (!FINAL_STATUSES.has(form.get("CallStatus") ?? "")) return;
    keepAlive.remove(org, sid);
    // Released if it was talking, cancelled if it was on hold; idempotent,
    // so a retried callback is harmless.
    try {
      await client.release(org, sid);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === "call_not_found")) throw e;
    }
  }

  const server = createServer((req, res) => {
    void route(req, res).catch((e: unknown) => {
      if (e instanceof BadRequest) {
        res.writeHead(400, { "content-type": "text/plain" }).end(e.message);
        return;
      }
      console.error(`${req.method ?? "?"} ${req.url ?? "?"}:`, e);
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error");
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const parts = url.pathname.split("/").filter((p) => p !== "").map(decodeURIComponent);
    if (req.method !== "POST" || parts[0] !== "voice") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const form = new URLSearchParams(await body(req));
    const [, org, a, b] = parts;
    let xml: string | undefined;
    if (org !== undefined && a !== undefined && b === "incoming" && parts.length === 4) {
      xml = await incoming(org, a, form, url);
    } else if (org !== undefined && a === "wait" && parts.length === 3) {
      xml = await wait(org, form);
    } else if (org !== undefined && a === "status" && parts.length === 3) {
      await status(org, form);
      res.writeHead(204).end();
      return;
    }
    if (xml === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": "application/xml" }).end(xml);
  }

  return {
    server,
    client,
    keepAlive,
    close: async () => {
      keepAlive.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

class BadRequest extends Error {}

function required(form: URLSearchParams, field: string): string {
  const value = form.get(field);
  if (value === null || value === "") throw new BadRequest(`${field} is missing`);
  return value;
}

async function body(req: IncomingMessage): Promise<string> {
  let text = "";
  req.setEncoding("utf8");
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > 64 * 1024) throw new BadRequest("the body is too large");
  }
  return text;
}
