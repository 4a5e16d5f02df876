/**
 * A throwaway PostgreSQL cluster for the replica tests, as the Rust tests
 * make theirs (crates/slotgate/tests/it/support/postgres.rs): `initdb` and
 * `pg_ctl` in a new temporary directory, on a free port of 127.0.0.1, as the
 * `postgres` user when we are root (PostgreSQL refuses to run as root);
 * stopped (`-m immediate`) and removed by `stop()`.
 */

import { execFile } from "node:child_process";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { appendFile, chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The folder of `initdb` and `pg_ctl`, or undefined when PostgreSQL is not installed. */
export function postgresBinDir(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const initdb = join(dir, "initdb");
    if (dir !== "" && existsSync(initdb)) return dirname(realpathSync(initdb));
  }
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .map(Number)
    .filter((v) => Number.isInteger(v) && existsSync(join(root, String(v), "bin/initdb")))
    .sort((a, b) => b - a);
  return versions[0] === undefined ? undefined : join(root, String(versions[0]), "bin");
}

/** A port of 127.0.0.1 nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** A PostgreSQL server of its own. */
export class PgCluster {
  private constructor(
    readonly dir: string,
    readonly bin: string,
    readonly asPostgres: boolean,
    public port: number,
  ) {}

  /** `postgres://postgres@127.0.0.1:PORT/postgres`. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${String(this.port)}/postgres`;
  }

  /** Creates a cluster in a new temporary directory and starts it. */
  static async start(bin: string): Promise<PgCluster> {
    const asPostgres = process.getuid?.() === 0;
    const dir = await mkdtemp(join(tmpdir(), "slotgate-ts-pg-"));
    if (asPostgres) {
      const { stdout } = await run("id", ["-u", "postgres"]);
      const uid = Number(stdout.trim());
      if (!Number.isInteger(uid)) throw new Error("no postgres user to run PostgreSQL as");
      await chown(dir, uid, -1);
    }
    const cluster = new PgCluster(dir, bin, asPostgres, 0);
    const data = join(dir, "data");
    await cluster.pg("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
    await appendFile(
      join(data, "postgresql.conf"),
      `\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nfsync = on\n`,
    );
    // A free port can be taken before the server binds it: then try another.
    for (let attempt = 1; ; attempt++) {
      cluster.port = await freePort();
      try {
        await cluster.pgCtl("start", ["-l", join(dir, "postgres.log"), "-o", `-p ${String(cluster.port)}`]);
        return cluster;
      } catch (e) {
        if (attempt >= 5) {
          await cluster.stop();
          throw e;
        }
      }
    }
  }

  /** Stops the server at once, as a crash would, and removes its directory. */
  async stop(): Promise<void> {
    if (existsSync(join(this.dir, "data/postmaster.pid"))) {
      await this.pgCtl("stop", ["-m", "immediate"]).catch(() => undefined);
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  private pgCtl(action: string, args: string[]): Promise<unknown> {
    return this.pg("pg_ctl", [action, "-D", join(this.dir, "data"), ...args, "-w", "-t", "120"]);
  }

  /** Runs a PostgreSQL program as the user PostgreSQL runs as, in the cluster's directory. */
  private async pg(program: string, args: string[]): Promise<void> {
    const path = join(this.bin, program);
    const [cmd, argv] = this.asPostgres ? ["runuser", ["-u", "postgres", "--", path, ...args]] : [path, args];
    await run(cmd, argv, { cwd: this.dir, timeout: 180_000 });
  }
}
