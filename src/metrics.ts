import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
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

/** Queue depth is read from Redis at scrape time, so it is right whichever process enqueued. */
export function registerQueueDepth(queue: GradingQueue): void {
  if (registry.getSingleMetric("autograder_grading_queue_jobs")) registry.removeSingleMetric("autograder_grading_queue_jobs");
  new Gauge({
    name: "autograder_grading_queue_jobs",
    help: "Jobs in the grading queue by state",
    labelNames: ["state"] as const,
    registers: [registry],
    async collect() {
      const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed", "completed", "prioritized");
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
}

/** /metrics (API and worker) is open unless METRICS_TOKEN is set; then it needs that bearer token. */
export function metricsAuthorized(metricsToken: string | undefined, authorization: string | undefined): boolean {
  if (!metricsToken) return true;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return Boolean(match && safeEqual(match[1]!, metricsToken));
}
