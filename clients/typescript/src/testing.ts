/**
 * `slotgate/testing`: runs the real slotgate server for tests, on a free
 * port of 127.0.0.1 with a data directory of its own.
 *
 * ```ts
 * await using server = await startServer();   // SLOTGATE_BIN, or slotgate on PATH
 * const client = new Client({ url: server.url, key: server.operatorKey });
 * ```
 */

import "./dispose.js";

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What {@link startServer} takes. */
export interface ServerOptions {
  /** The slotgate binary: default `$SLOTGATE_BIN`, else `slotgate` on `PATH`. */
  bin?: string;
  /** The data directory: default a new temporary one, removed by {@link SlotgateServer.stop}. */
  dataDir?: string;
  /** The operator key (`SLOTGATE_OPERATOR_KEY`): default a random one. */
  operatorKey?: string;
  /** More `serve` options, e.g. `["--store", "postgres://..."]`. */
  args?: string[];
  /** More environment variables. */
  env?: Record<string, string>;
  /** How long to wait for the server's ready line, in ms (default 60 s). */
  readyTimeoutMs?: number;
}

/** A running `slotgate serve`. */
export class SlotgateServer implements AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Its port; kept across {@link SlotgateServer.restart}. */
  port: number;
  /** The operator key it runs with. */
  readonly operatorKey: string;
  /** Its data directory. */
  readonly dataDir: string;
  /** The process, while it runs. */
  process: ChildProcess | undefined;

  readonly #opts: ServerOptions;
  readonly #ownDir: boolean;
  #log = "";

  /** @internal Made by {@link startServer}. */
  constructor(opts: ServerOptions, dataDir: string, ownDir: boolean, operatorKey: string) {
    this.#opts = opts;
    this.dataDir = dataDir;
    this.#ownDir = ownDir;
    this.operatorKey = operatorKey;
    this.port = 0;
    this.url = "";
  }

  /** What the server wrote to stderr so far, over all its runs. */
  get log(): string {
    return this.#log;
  }

  /** @internal Starts the process on `port` (0: a free one) and waits for its ready line. */
  async start(port: number): Promise<void> {
    const bin = this.#opts.bin ?? process.env.SLOTGATE_BIN ?? "slotgate";
    const args = ["serve", "--listen", `127.0.0.1:${String(port)}`, "--data-dir", this.dataDir];
    const child = spawn(bin, [...args, ...(this.#opts.args ?? [])], {
      env: { ...process.env, RUST_LOG: "info", ...this.#opts.env, SLOTGATE_OPERATOR_KEY: this.operatorKey },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.process = child;
    const timeoutMs = this.#opts.readyTimeoutMs ?? 60_000;
    this.port = await new Promise<number>((resolve, reject) => {
      let pending = "";
      const fail = (why: string): void => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(new Error(`slotgate (${bin}) ${why}; its stderr:\n${this.#log}`));
      };
      const timer = setTimeout(() => { fail(`was not ready within ${String(timeoutMs)} ms`); }, timeoutMs);
      child.on("error", (e) => { fail(`did not start: ${e.message}`); });
      child.on("exit", (code, sig) => { fail(`exited before it was ready (${String(code ?? sig)})`); });
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk: string) => {
        this.#log += chunk;
        pending += chunk;
        const ready = /slotgate ready on http:\/\/[^\s/]*:(\d+)/.exec(pending);
        if (ready?.[1] !== undefined) {
          clearTimeout(timer);
          child.removeAllListeners("exit");
          resolve(Number(ready[1]));
        }
        pending = pending.slice(pending.lastIndexOf("\n") + 1);
      });
    });
    this.url = `http://127.0.0.1:${String(this.port)}`;
  }

  /** `SIGKILL`, as a crash: waits until the process is gone. */
  async kill9(): Promise<void> {
    await this.#signal("SIGKILL");
  }

  /** `SIGTERM`: waits until the process has exited (it finishes in-flight requests first). */
  async terminate(): Promise<void> {
    await this.#signal("SIGTERM");
  }

  /**
   * Starts it again, after {@link SlotgateServer.kill9} or
   * {@link SlotgateServer.terminate}, on the same port and data directory,
   * so clients come back to the same URL.
   */
  async restart(): Promise<void> {
    if (this.process !== undefined) throw new Error("stop the server before restarting it");
    // The port was just freed; someone else may take it: try a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.start(this.port);
        return;
      } catch (e) {
        if (attempt >= 10 || !/address already in use|AddrInUse/i.test(String(e))) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Stops it (`SIGTERM`, then `SIGKILL` after 10 s) and removes a data directory it made. */
  async stop(): Promise<void> {
    if (this.process !== undefined) {
      const timer = setTimeout(() => this.process?.kill("SIGKILL"), 10_000);
      await this.terminate();
      clearTimeout(timer);
    }
    if (this.#ownDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.process;
    if (child === undefined) return;
    this.process = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => { resolve(); });
      child.kill(sig);
    });
  }
}

/** Starts `slotgate serve` on a free port of 127.0.0.1 and waits until it is ready. */
export async function startServer(opts: ServerOptions = {}): Promise<SlotgateServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "slotgate-")));
  const key = opts.operatorKey ?? `op_${randomBytes(16).toString("hex")}`;
  const server = new SlotgateServer(opts, dataDir, opts.dataDir === undefined, key);
  try {
    await server.start(0);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}
