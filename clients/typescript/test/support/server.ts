/** What the tests share: the real server, a client of it, and bounded waits. */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, type ClientOptions } from "../../src/index.js";
import { type ServerOptions, type SlotgateServer, startServer } from "../../src/testing.js";

/** The package's folder (these files run from build/test/support/). */
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "../../..");

/** `SLOTGATE_BIN`, default the workspace's debug build. */
export const BIN = process.env.SLOTGATE_BIN ?? join(packageRoot, "../../target/debug/slotgate");

/** The real binary on a free port with a temporary data directory. */
export function serve(opts: ServerOptions = {}): Promise<SlotgateServer> {
  return startServer({ bin: BIN, ...opts });
}

/** A client of `server` with its operator key (or `key`). */
export function clientOf(server: SlotgateServer, opts: Partial<ClientOptions> = {}): Client {
  return new Client({ url: server.url, key: server.operatorKey, ...opts });
}

/** Waits until `check()` is true, asking every 50 ms; fails after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${String(timeoutMs)} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether `promise` is still pending after `ms` (for "it waits" assertions). */
export async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol("pending");
  const timer = new Promise((r) => setTimeout(() => { r(marker); }, ms));
  const winner = await Promise.race([promise.then(() => "settled", () => "settled"), timer]);
  return winner === marker;
}

let orgs = 0;

/** A new org id, unique in this test process. */
export function newOrg(): string {
  orgs += 1;
  return `org-${String(process.pid)}-${String(orgs)}`;
}
