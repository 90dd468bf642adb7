/**
 * The platform as real processes, the way `npm run api` / `npm run worker` / `npm start` run it (their command
 * read from package.json; `tsx x.ts` becomes `node --import tsx x.ts` so the pid is the server's own), on a fresh database migrated
 * from prisma/migrations and its own QUEUE_PREFIX, so a benchmark never touches another run's rows or jobs.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, readFileSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { applyMigrations, ensureDatabase, withDatabase } from "../../src/db/migrate.ts";
import { freePort } from "../../tests/helpers/ports.ts";
export { freePort };

export const BASE_URL = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/autograder";
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const ADMIN_TOKEN = `bench-admin-${randomBytes(16).toString("hex")}`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Drops and recreates `autograder_bench_<name>`, migrated. Returns its URL. */
export async function freshDatabase(name: string): Promise<string> {
  const database = `autograder_bench_${name.replace(/[^a-z0-9]/gi, "_").toLowerCase()}`;
  const admin = new pg.Client({ connectionString: withDatabase(BASE_URL, "postgres") });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
  const url = withDatabase(BASE_URL, database);
  await ensureDatabase(url);
  await applyMigrations(url);
  return url;
}

export const queuePrefix = (name: string) => `bench-${name}-${randomBytes(4).toString("hex")}`;

/** Deletes this run's keys (never FLUSHALL: other runs share the Redis). */
export async function flushPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
}

export interface Proc {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  logFile: string;
  /** Spawn to the first 200 of its ready URL. */
  startupMs: number;
  stop(): Promise<number | null>;
}

const children = new Set<ChildProcess>();
process.once("exit", () => children.forEach((c) => c.kill("SIGKILL")));
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));

let logDir: string | undefined;

/**
 * Starts `node [--import tsx] <script> ...args` with `env` over this process's environment and waits until
 * `readyPath` on its port answers 200. `extraNodeArgs` e.g. ["--cpu-prof"].
 */
export async function startProcess(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string>,
  opts: {
    port?: number;
    portVar?: string;
    readyPath?: string;
    /** Other URLs that must answer 200 too (npm start's worker child at its /healthz). */
    alsoReady?: string[];
    extraNodeArgs?: string[];
    timeoutMs?: number;
    tsx?: boolean;
  } = {},
): Promise<Proc> {
  logDir ??= await mkdtemp(path.join(tmpdir(), "bench-"));
  const port = opts.port ?? (await freePort());
  const logFile = path.join(logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: "a" });
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [...(opts.extraNodeArgs ?? []), ...(opts.tsx === false ? [] : ["--import", "tsx"]), script, ...args],
    {
      env: { ...process.env, HOST: "127.0.0.1", ...env, [opts.portVar ?? "PORT"]: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => (children.delete(child), resolve(code))));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + (opts.timeoutMs ?? 90_000);
  const tail = async () => (await readFile(logFile, "utf8").catch(() => "")).split("\n").slice(-30).join("\n");
  const answers = (u: string) =>
    fetch(u, { signal: AbortSignal.timeout(1000) })
      .then((r) => r.status === 200)
      .catch(() => false);
  for (;;) {
    const ok = (await Promise.all([`${url}${opts.readyPath ?? "/readyz"}`, ...(opts.alsoReady ?? [])].map(answers))).every(Boolean);
    if (ok) break;
    if (child.exitCode !== null) throw new Error(`${name} exited while starting:\n${await tail()}`);
    if (Date.now() > until) throw new Error(`${name} did not get ready:\n${await tail()}`);
    await sleep(20);
  }
  const startupMs = performance.now() - t0;
  const stop = async () => {
    if (child.exitCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const code = await Promise.race([exited, sleep(40_000).then(() => "timeout" as const)]);
    if (code !== "timeout") return code;
    child.kill("SIGKILL");
    return exited;
  };
  return { name, port, url, child, logFile, startupMs, stop };
}

/** The platform's env for a bench run: defaults everywhere except where it must be its own (db, queue, ports). */
export function platformEnv(databaseUrl: string, prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    ADMIN_TOKEN,
    WORKER_METRICS_PORT: "0",
    ...extra,
  };
}

/**
 * The command line npm uses for a mode (`npm run api`, `npm run worker`, `npm start` for all), read from
 * package.json so the benchmark runs whatever those scripts run (tsx sources or a compiled build); a `pre…` script
 * (e.g. a build) runs once first. The last command of a `&&` chain is the server (migrations are already applied).
 */
const prepared = new Set<string>();
function platformCommand(mode: "api" | "worker" | "all"): { script: string; args: string[]; viaTsx: boolean } {
  const scripts = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts;
  const name = mode === "all" ? "start" : mode;
  // npm runs the pre script before each start; the same command (a build) runs once per benchmark here.
  const pre = scripts[`pre${name}`];
  if (pre && !prepared.has(pre)) {
    execFileSync("npm", ["run", "-s", `pre${name}`], { stdio: "inherit" });
    prepared.add(pre);
  }
  const words = scripts[name]!.split("&&").at(-1)!.trim().split(/\s+/);
  if (words[0] === "tsx") return { script: words[1]!, args: words.slice(2), viaTsx: true };
  if (words[0] === "node") return { script: words[1]!, args: words.slice(2), viaTsx: false };
  throw new Error(`cannot run npm's ${name} script as a process: ${scripts[name]}`);
}

/**
 * The platform in `mode`: an API is ready at /readyz; a worker at its metrics port's /healthz; `npm start` (all)
 * when both its API and its worker child are, as a platform started before an exam would be.
 */
export async function startPlatform(name: string, mode: "api" | "worker" | "all", env: Record<string, string>, extraNodeArgs?: string[]) {
  const { script, args, viaTsx } = platformCommand(mode);
  const opts = { extraNodeArgs, tsx: viaTsx };
  if (mode === "worker") return startProcess(name, script, args, env, { ...opts, portVar: "WORKER_METRICS_PORT", readyPath: "/healthz" });
  if (mode === "all" && env.WORKER_PROCESSES !== "0") {
    const workerPort = await freePort();
    const withWorker = { ...env, WORKER_METRICS_PORT: String(workerPort) };
    return startProcess(name, script, args, withWorker, { ...opts, alsoReady: [`http://127.0.0.1:${workerPort}/healthz`] });
  }
  return startProcess(name, script, args, env, opts);
}
