import type { Server } from "node:http";
import type { Worker } from "bullmq";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { pino } from "pino";
import { buildApp, buildServices } from "./app.ts";
import { loadAllSets, formatBundleErrors } from "./catalog/index.ts";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { createDb, type Db } from "./db.ts";
import { checkSandbox, SandboxUnavailable } from "./grading/model-runtime.ts";
import { createGradingQueue } from "./grading/queue.ts";
import { startGradingWorker } from "./grading/worker.ts";
import { startWorkerHttp } from "./grading/worker-http.ts";
import { closeThreads, configureThreads, threadPool } from "./grading/threads/index.ts";
import { closeSandboxPools } from "./grading/onnx/sandbox-pool.ts";
import { bounded, drainWorker } from "./lib/shutdown.ts";
import { startWorkerChildren } from "./lib/worker-children.ts";
import { registerQueueDepth, registerQueueLag } from "./metrics.ts";
import { startOutbox } from "./jobs/outbox.ts";

type Mode = "api" | "worker" | "all";

/** One readable line per unreachable dependency instead of a stack trace. */
async function checkDependencies(config: Config, db: Db): Promise<string[]> {
  const problems: string[] = [];
  try {
    await db.$queryRaw`SELECT 1`;
  } catch {
    problems.push(
      `Postgres is not reachable at ${redact(config.DATABASE_URL)}. Start it (docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d postgres) or set DATABASE_URL, then run npm run db:migrate.`,
    );
  }
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch {
    problems.push(
      `Redis is not reachable at ${redact(config.REDIS_URL)}. Start it (docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d redis) or set REDIS_URL.`,
    );
  } finally {
    redis.disconnect();
  }
  return problems;
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]+@/, "//$1:***@");

async function main(mode: Mode) {
  const config = loadConfig();
  // Fail closed: no memory cap for models, no worker (before anything else, so the line is the only output).
  if (mode !== "api") {
    try {
      const { isolation, warning } = checkSandbox(config);
      if (warning) console.warn(warning);
      if (isolation.memoryCapMb === null)
        console.warn("SANDBOX_ALLOW_UNCAPPED=true: models run WITHOUT a memory cap (development only); grades record it.");
    } catch (e) {
      if (!(e instanceof SandboxUnavailable)) throw e;
      console.error(`The grading worker cannot start: ${e.message}`);
      process.exit(1);
    }
  }
  const db = createDb(config.DATABASE_URL);
  const problems = await checkDependencies(config, db);
  if (problems.length) {
    for (const p of problems) console.error(p);
    process.exit(1);
  }
  const tables = await db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'Submission'`;
  if (Number(tables[0]?.n ?? 0) === 0) {
    console.error("The database has no schema yet: run `npm run db:migrate` first.");
    process.exit(1);
  }

  // `all` with worker processes: this process is the API, the workers are its children (src/lib/worker-children.ts).
  const children = mode === "all" && config.WORKER_PROCESSES > 0 ? config.WORKER_PROCESSES : 0;
  const role: Mode = children ? "api" : mode;
  const queue = createGradingQueue(config);
  // What shutdown stops, in its order: outbox, then API and worker together, then the rest.
  let api: FastifyInstance | undefined;
  let worker: Worker | undefined;
  let outbox: { stop(): unknown } | undefined;
  let workerHttp: Server | undefined;
  const log = pino({ level: config.LOG_LEVEL, name: "worker" });
  // One grader-thread pool for the process: the API's bundle and model checks and the worker's graders.
  configureThreads(config);

  // Started first, so they boot while the API loads problems/ (they read problems from the database when grading).
  const workerChildren = children ? startWorkerChildren(children, config.WORKER_METRICS_PORT, log) : undefined;
  if (role !== "worker") {
    const app = await buildApp({ config, db, queue });
    if (config.LOAD_PROBLEMS) {
      const problemSets = app.services.problemSets;
      const loaded = await loadAllSets(config.PROBLEMS_DIR, (slug, hash) => problemSets.isCurrentDeploymentContent(slug, hash));
      if (!loaded.ok) {
        console.error(`Problem sets in ${config.PROBLEMS_DIR}/ have errors:\n${formatBundleErrors(loaded.errors).join("\n")}`);
        process.exit(1);
      }
      for (const set of loaded.sets) {
        const saved = await app.services.problemSets.save(set, "directory", null);
        app.log.info({ set: set.slug, revision: saved.revision, created: saved.created }, "problem set loaded");
      }
      for (const slug of loaded.unchanged) app.log.info({ set: slug, created: false }, "problem set unchanged since it was stored");
    }
    await app.listen({ port: config.PORT, host: config.HOST });
    api = app;
  }

  if (role !== "api") {
    // Every grader thread booted, mathjs and the NLP model loaded, before the first job: an exam's first answers
    // must not wait for module loading.
    configureThreads(config, { preload: true });
    await threadPool().warm();
    const services = buildServices({ config, db, queue }, log);
    worker = startGradingWorker(config, { db, problemSets: services.problemSets, queue }, log);
    outbox = startOutbox(db, queue, { graceMs: config.GRADING_STALE_AFTER_S * 1000, intervalMs: config.SWEEP_INTERVAL_S * 1000 }, log);
    log.info({ concurrency: config.WORKER_CONCURRENCY }, "grading worker started");
    if (mode === "worker" && config.WORKER_METRICS_PORT) {
      // A worker-only process serves its own /metrics: the queue's depth and lag as the API shows them.
      registerQueueDepth(queue);
      registerQueueLag(db);
      workerHttp = await startWorkerHttp(config.WORKER_METRICS_PORT, config.HOST, config.METRICS_TOKEN);
    }
  }

  /**
   * SIGTERM/SIGINT: the API stops accepting and finishes its in-flight requests; the worker takes no new job
   * and gives its running grades SHUTDOWN_GRACE_S, then hands the rest back to the queue (drainWorker); the
   * sandbox children and grader threads stop; exit 0. A second signal ends the process at once.
   */
  const shutdown = async (signal: string) => {
    const graceMs = config.SHUTDOWN_GRACE_S * 1000;
    console.error(
      `${signal}: shutting down: no new requests or jobs; running grades have ${config.SHUTDOWN_GRACE_S} s to finish, then go back to the queue`,
    );
    process.once(signal, () => process.exit(130));
    // Whatever hangs (a dependency that does not answer), the process does not outlive the grace by much.
    setTimeout(() => {
      console.error("Shutdown did not complete in time; exiting.");
      process.exit(1);
    }, graceMs + 20_000).unref();
    await bounded(async () => outbox?.stop(), 5000);
    const [, drained] = await Promise.all([
      api && bounded(() => api!.close(), graceMs),
      worker && drainWorker(worker, db, graceMs, log),
      workerChildren?.stop(graceMs),
    ]);
    await bounded(() => closeSandboxPools(), 10_000);
    await bounded(() => closeThreads(), 5000);
    if (workerHttp) await bounded(() => new Promise((resolve) => workerHttp!.close(resolve)), 2000);
    await bounded(() => queue.close(), 5000);
    await bounded(() => db.$disconnect(), 5000);
    console.error(`${signal}: stopped${drained?.released ? ` (${drained.released} grade(s) handed back to the queue)` : ""}.`);
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
  // A worker started by `npm start` (IPC channel to its parent) stops when the parent is gone, however it ended.
  if (process.connected) process.once("disconnect", () => void shutdown("parent process gone"));
}

const mode = (process.argv[2] ?? "all") as Mode;
if (!["api", "worker", "all"].includes(mode)) {
  console.error(`Unknown mode '${mode}': use api, worker or all.`);
  process.exit(2);
}
main(mode).catch((err) => {
  console.error(err instanceof ConfigError ? err.message : `Failed to start: ${(err as Error).message}`);
  process.exit(1);
});
