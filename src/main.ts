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
import { closeThreads, configureThreads } from "./grading/threads/index.ts";
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

  const queue = createGradingQueue(config);
  const closers: (() => Promise<unknown>)[] = [];
  // One grader-thread pool for the process: the API's bundle and model checks and the worker's graders.
  configureThreads(config);

  if (mode !== "worker") {
    const app = await buildApp({ config, db, queue });
    if (config.LOAD_PROBLEMS) {
      const loaded = await loadAllSets(config.PROBLEMS_DIR);
      if (!loaded.ok) {
        console.error(`Problem sets in ${config.PROBLEMS_DIR}/ have errors:\n${formatBundleErrors(loaded.errors).join("\n")}`);
        process.exit(1);
      }
      for (const set of loaded.sets) {
        const saved = await app.services.problemSets.save(set, "directory", null);
        app.log.info({ set: set.slug, revision: saved.revision, created: saved.created }, "problem set loaded");
      }
    }
    await app.listen({ port: config.PORT, host: config.HOST });
    closers.push(() => app.close());
  }

  if (mode !== "api") {
    const log = pino({ level: config.LOG_LEVEL, name: "worker" });
    const services = buildServices({ config, db, queue }, log);
    const worker = startGradingWorker(config, db, services.problemSets, log);
    const outbox = startOutbox(
      db,
      queue,
      { graceMs: config.GRADING_STALE_AFTER_S * 1000, intervalMs: config.SWEEP_INTERVAL_S * 1000 },
      log,
    );
    log.info({ concurrency: config.WORKER_CONCURRENCY }, "grading worker started");
    closers.unshift(
      () => outbox.stop(),
      () => worker.close(),
    );
    if (mode === "worker" && config.WORKER_METRICS_PORT) {
      const server = await startWorkerHttp(config.WORKER_METRICS_PORT, config.HOST, config.METRICS_TOKEN);
      closers.push(() => new Promise((resolve) => server.close(resolve)));
    }
  }

  const shutdown = async (signal: string) => {
    console.error(`${signal}: shutting down (in-flight grades finish first)`);
    for (const close of closers) await close().catch(() => undefined);
    await queue.close();
    await closeThreads();
    await db.$disconnect();
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
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
