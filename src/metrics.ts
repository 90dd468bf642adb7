import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Db } from "./db.ts";
import type { GradingQueue } from "./grading/queue.ts";
import { safeEqual } from "./lib/crypto.ts";

/** One registry per process; `npm start` runs API and workers together so /metrics shows both. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "autograder_" });

export const gradingDuration = new Histogram({
  name: "autograder_grading_duration_seconds",
  help: "Time to grade one submission, by grader type and outcome",
  labelNames: ["grader", "status"] as const,
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
  registers: [registry],
});

export const gradingOutcomes = new Counter({
  name: "autograder_grading_outcomes_total",
  help: "Grading runs by outcome (graded, rejected, failed, retried, skipped)",
  labelNames: ["outcome"] as const,
  registers: [registry],
});

export const outboxRecovered = new Counter({
  name: "autograder_outbox_recovered_total",
  help: "Work the outbox loop found in Postgres without a live job and enqueued again, by job kind",
  labelNames: ["kind"] as const,
  registers: [registry],
});

export const httpDuration = new Histogram({
  name: "autograder_http_request_duration_seconds",
  help: "HTTP request duration by route and status code",
  labelNames: ["method", "route", "status"] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers: [registry],
});

export const pressureRejections = new Counter({
  name: "autograder_http_overloaded_total",
  help: "Requests answered 503 OVERLOADED by the backpressure check, by what was over its threshold",
  labelNames: ["reason"] as const,
  registers: [registry],
});

/** A scrape must not hang or fail on a dependency that is down: a reading that fails is left out of this scrape. */
async function read<T>(what: Promise<T>, ms = 2000): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([what, timeout]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Replaces a gauge of the same name, so that tests building several apps in one process do not collide. */
function gauge<L extends string>(config: ConstructorParameters<typeof Gauge<L>>[0]): Gauge<L> {
  if (registry.getSingleMetric(config.name)) registry.removeSingleMetric(config.name);
  return new Gauge({ ...config, registers: [registry] });
}

/** Queue depth is read from Redis at scrape time, so it is right whichever process enqueued. */
export function registerQueueDepth(queue: GradingQueue): void {
  gauge({
    name: "autograder_grading_queue_jobs",
    help: "Jobs in the grading queue by state",
    labelNames: ["state"] as const,
    async collect() {
      this.reset();
      const counts = await read(queue.getJobCounts("waiting", "active", "delayed", "failed", "completed", "prioritized"));
      for (const [state, n] of Object.entries(counts ?? {})) this.set({ state }, n);
    },
  });
}

/** Lag from Postgres, the source of truth (it counts work Redis lost too): how many wait in `queued`, the oldest how long. */
export function registerQueueLag(db: Db): void {
  gauge({
    name: "autograder_grading_oldest_queued_seconds",
    help: "Age of the oldest submission waiting in queued (seconds since it was queued; 0 when none waits)",
    async collect() {
      this.reset();
      const rows = await read(
        db.$queryRaw<{ oldest: Date | null }[]>`SELECT min("statusAt") AS oldest FROM "Submission" WHERE status = 'queued'`,
      );
      const oldest = rows?.[0]?.oldest;
      if (rows) this.set(oldest ? Math.max(0, (Date.now() - oldest.getTime()) / 1000) : 0);
    },
  });
  gauge({
    name: "autograder_grading_queued_submissions",
    help: "Submissions in Postgres waiting to be graded (status queued)",
    async collect() {
      this.reset();
      const rows = await read(db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "Submission" WHERE status = 'queued'`);
      if (rows) this.set(Number(rows[0]?.n ?? 0));
    },
  });
}

/** /metrics (API and worker) is open unless METRICS_TOKEN is set; then it needs that bearer token. */
export function metricsAuthorized(metricsToken: string | undefined, authorization: string | undefined): boolean {
  if (!metricsToken) return true;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return Boolean(match && safeEqual(match[1]!, metricsToken));
}
