import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { createTestDatabase, dropTestDatabase, urlFor } from "../../helpers/databases.ts";
import { freePort } from "../../helpers/ports.ts";

export const ADMIN_TOKEN = "fault-admin-token-0123456789abcdef0123456789";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Short clocks so every fault heals within seconds: a dead worker's job is retaken after GRADING_LOCK_MS,
 * a run Redis lost is found by the outbox after GRADING_STALE_AFTER_S. Other settings stay at their defaults.
 */
export const FAULT_ENV: Record<string, string> = {
  NODE_ENV: "test",
  HOST: "127.0.0.1",
  LOG_LEVEL: "warn",
  LOAD_PROBLEMS: "false",
  RATE_LIMIT_PER_MIN: "0",
  AUTH_FAILURES_PER_MIN: "0",
  WORKER_CONCURRENCY: "2",
  GRADER_THREADS: "1",
  GRADING_ATTEMPTS: "5",
  GRADING_BACKOFF_MS: "200",
  GRADING_LOCK_MS: "2000",
  GRADING_STALE_AFTER_S: "3",
  SWEEP_INTERVAL_S: "1",
};

/**
 * Where the system under test is run from: this checkout, or another one (FAULTS_APP_DIR, e.g. an export of
 * a commit with node_modules linked) so that a tree others are editing cannot break a process mid-run.
 */
const APP_DIR = process.env.FAULTS_APP_DIR ?? process.cwd();

export type Role = "api" | "worker";

/** One child process of the system under test: `node --import tsx src/main.ts <role>`, its log kept in a file. */
export interface Proc {
  name: string;
  role: Role;
  /** The API's port, or the worker's /healthz port. */
  port: number;
  child: ChildProcess | null;
  exited: Promise<number | null> | null;
  logFile: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every child any cluster started, so a crashed test run still leaves no process behind. */
const everyChild = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of everyChild) c.kill("SIGKILL");
});

export interface Cluster {
  name: string;
  database: string;
  databaseUrl: string;
  prefix: string;
  api: Proc;
  workers: Proc[];
  baseUrl: string;
  /** A pg pool on the cluster's database, for the checks (not used by the system under test). */
  pool: pg.Pool;
  redis: Redis;
  start(p: Proc): Promise<void>;
  /** Starts every process that is not running and waits until each answers. */
  ensureUp(): Promise<void>;
  signal(p: Proc, sig: NodeJS.Signals): void;
  /** Sends the signal and waits for the exit; returns the exit code (null when killed by a signal). */
  stop(p: Proc, sig: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  running(p: Proc): boolean;
  pid(p: Proc): number | undefined;
  logTail(p: Proc, lines?: number): Promise<string>;
  /** Deletes every Redis key under this cluster's prefix (never FLUSHALL: other runs share the Redis). */
  flushQueues(): Promise<number>;
  close(): Promise<void>;
}

export async function createCluster(name: string, env: Record<string, string> = {}): Promise<Cluster> {
  const database = await createTestDatabase(`faults_${name}`);
  const databaseUrl = urlFor(database);
  const prefix = `faults-${name}-${randomBytes(4).toString("hex")}`;
  const logDir = await mkdtemp(path.join(tmpdir(), `faults-${name}-`));
  const mk = async (role: Role, n: string): Promise<Proc> => ({
    name: n,
    role,
    port: await freePort(),
    child: null,
    exited: null,
    logFile: path.join(logDir, `${n}.log`),
  });
  const api = await mk("api", "api");
  const workers = [await mk("worker", "worker1"), await mk("worker", "worker2")];
  const baseUrl = `http://127.0.0.1:${api.port}`;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
  pool.on("error", () => undefined); // a Postgres restart drops idle clients; the next query reconnects
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  redis.on("error", () => undefined);

  const childEnv = (p: Proc) => ({
    ...process.env,
    ...FAULT_ENV,
    ...env,
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    ADMIN_TOKEN,
    PORT: String(p.role === "api" ? p.port : 0),
    WORKER_METRICS_PORT: String(p.role === "worker" ? p.port : 0),
  });

  const running = (p: Proc) => p.child !== null && p.child.exitCode === null && p.child.signalCode === null;

  async function answers(p: Proc): Promise<boolean> {
    const url = `http://127.0.0.1:${p.port}/${p.role === "api" ? "readyz" : "healthz"}`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async function start(p: Proc) {
    if (running(p)) return;
    const log = createWriteStream(p.logFile, { flags: "a" });
    log.write(`\n--- start ${new Date().toISOString()} ---\n`);
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", p.role], {
      cwd: APP_DIR,
      env: childEnv(p),
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    everyChild.add(child);
    p.child = child;
    p.exited = new Promise((resolve) =>
      child.once("exit", (code) => {
        everyChild.delete(child);
        resolve(code);
      }),
    );
    const until = Date.now() + 60_000;
    while (!(await answers(p))) {
      if (!running(p)) throw new Error(`${p.name} exited while starting:\n${await logTail(p)}`);
      if (Date.now() > until) throw new Error(`${p.name} did not answer within 60 s:\n${await logTail(p)}`);
      await sleep(100);
    }
  }

  async function logTail(p: Proc, lines = 30) {
    const text = await readFile(p.logFile, "utf8").catch(() => "");
    return text.split("\n").slice(-lines).join("\n");
  }

  async function stop(p: Proc, sig: NodeJS.Signals, timeoutMs = 30_000) {
    if (!running(p)) return p.child?.exitCode ?? null;
    p.child!.kill(sig);
    const code = await Promise.race([p.exited!, sleep(timeoutMs).then(() => "timeout" as const)]);
    if (code === "timeout") {
      p.child!.kill("SIGKILL");
      await p.exited;
      throw new Error(`${p.name} did not exit within ${timeoutMs} ms of ${sig}:\n${await logTail(p)}`);
    }
    return code;
  }

  async function flushQueues() {
    let deleted = 0;
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== "0");
    return deleted;
  }

  return {
    name,
    database,
    databaseUrl,
    prefix,
    api,
    workers,
    baseUrl,
    pool,
    redis,
    start,
    async ensureUp() {
      // Processes that were stopped (SIGSTOP) must not be mistaken for running ones.
      for (const p of [api, ...workers]) if (running(p)) p.child!.kill("SIGCONT");
      await Promise.all([api, ...workers].map(start));
    },
    signal(p, sig) {
      if (running(p)) p.child!.kill(sig);
    },
    stop,
    running,
    pid: (p) => p.child?.pid,
    logTail,
    flushQueues,
    async close() {
      for (const p of [api, ...workers]) {
        if (!running(p)) continue;
        p.child!.kill("SIGKILL");
        await p.exited;
      }
      await flushQueues().catch(() => undefined);
      redis.disconnect();
      await pool.end().catch(() => undefined);
      await dropTestDatabase(database);
    },
  };
}
