import type { Db } from "../db.ts";
import type { GradingQueue } from "../grading/queue.ts";
import { outboxRecovered } from "../metrics.ts";
import { enqueue, JOB_KINDS, type AnyJobKind } from "./registry.ts";

const LIVE_STATES = new Set(["waiting", "paused", "delayed", "active", "prioritized", "waiting-children"]);

export interface OutboxOptions {
  /** Work younger than this is left to its own enqueue (GRADING_STALE_AFTER_S). */
  graceMs: number;
  /** Rows looked at per kind and pass. */
  limit?: number;
}

/**
 * Postgres is the source of truth: for every kind, the work its `recover` query finds and that has no
 * live job in Redis (flushed, restarted, the enqueue after a commit never happened, the job failed
 * without leaving Postgres right) is enqueued again. Several loops may run (one per worker process):
 * each row's compare-and-set (`take`) lets one of them enqueue it. Returns how many were enqueued.
 */
export async function recoverOnce(db: Db, queue: GradingQueue, opts: OutboxOptions, kinds: readonly AnyJobKind[] = JOB_KINDS) {
  let total = 0;
  for (const kind of kinds) {
    let n = 0;
    for (const found of await kind.recover(db, { graceMs: opts.graceMs, limit: opts.limit ?? 500 })) {
      const existing = await queue.getJob(kind.jobId(found.payload));
      const state = existing ? await existing.getState() : "missing";
      if (LIVE_STATES.has(state)) continue;
      if (!(await found.take())) continue;
      if (existing) await existing.remove().catch(() => undefined);
      await enqueue(queue, kind, found.payload);
      n++;
    }
    if (n) outboxRecovered.inc({ kind: kind.name }, n);
    total += n;
  }
  return total;
}

type Logger = { info(obj: object, msg: string): void; error(obj: object, msg: string): void };

/** recoverOnce every intervalMs, one pass at a time; a failing pass (Redis or Postgres away) is retried next interval. */
export function startOutbox(db: Db, queue: GradingQueue, opts: OutboxOptions & { intervalMs: number }, log: Logger) {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = recoverOnce(db, queue, opts)
      .then((n) => void (n && log.info({ requeued: n }, "outbox re-enqueued work Redis had lost")))
      .catch((err: unknown) => log.error({ err }, "outbox pass failed; will retry next interval"))
      .finally(() => (running = null));
  }, opts.intervalMs);
  timer.unref();
  /** Stops the loop and waits for a pass in progress, so shutdown does not cut one in half. */
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
