import { execFile } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > until) throw new Error(`${what} did not come back within ${timeoutMs} ms`);
    await sleep(200);
  }
}

const redisUp = () =>
  run("redis-cli", ["-h", "127.0.0.1", "-p", "6379", "ping"]).then(
    (r) => r.stdout.includes("PONG"),
    () => false,
  );
const postgresUp = () =>
  run("pg_isready", ["-h", "127.0.0.1", "-p", "5432", "-q"]).then(
    () => true,
    () => false,
  );

/** The machine's Redis stopped without saving (every key gone), then started again as ENVIRONMENT.md starts it. */
export async function restartRedis(downMs: number): Promise<void> {
  try {
    await run("redis-cli", ["-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"]).catch(() => undefined); // it drops the connection as it exits
    await waitFor("Redis shutdown", async () => !(await redisUp()), 10_000);
    await sleep(downMs);
  } finally {
    // Started again whatever happened above: other runs on this machine share this Redis.
    if (!(await redisUp())) {
      mkdirSync("/var/lib/redis", { recursive: true });
      mkdirSync("/var/log/redis", { recursive: true });
      // prettier-ignore
      await run("redis-server", ["--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "", "--appendonly", "no",
        "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]);
    }
    await waitFor("Redis", redisUp);
  }
}

/** The machine's Postgres restarted (every connection dropped, a few seconds down). */
export async function restartPostgres(): Promise<void> {
  const version = readdirSync("/etc/postgresql")[0]!;
  try {
    await run("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "restart"], { timeout: 120_000 });
  } finally {
    if (!(await postgresUp())) await run("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "start"]).catch(() => undefined);
    await waitFor("Postgres", postgresUp);
  }
}
