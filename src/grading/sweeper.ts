import type { Db } from "../db.ts";
import { sweeperRequeued } from "../metrics.ts";
import { enqueueGrading, jobIdFor, type GradingQueue } from "./queue.ts";

const LIVE_STATES = new Set(["waiting", "delayed", "active", "prioritized", "waiting-children"]);

/**
 * Postgres is the source of truth: a submission still queued/running past the deadline whose job
 * is gone from Redis (flush, crash before enqueue, job finished without a grade) is enqueued again.
 * Several sweepers may run; the compare-and-set on statusAt lets one of them take each submission.
 */
export async function sweepOnce(db: Db, queue: GradingQueue, staleAfterMs: number): Promise<number> {
  const stale = await db.submission.findMany({
    where: { status: { in: ["queued", "running"] }, statusAt: { lt: new Date(Date.now() - staleAfterMs) } },
    select: { id: true, gradingRun: true, statusAt: true },
    orderBy: { statusAt: "asc" },
    take: 500,
  });
  let requeued = 0;
  for (const s of stale) {
    const job = { submissionId: s.id, run: s.gradingRun };
    const existing = await queue.getJob(jobIdFor(job));
    const state = existing ? await existing.getState() : "missing";
    if (LIVE_STATES.has(state)) continue;
    const took = await db.submission.updateMany({
      where: { id: s.id, gradingRun: s.gradingRun, statusAt: s.statusAt },
      data: { statusAt: new Date() },
    });
    if (took.count === 0) continue;
    if (existing) await existing.remove().catch(() => undefined);
    await enqueueGrading(queue, job);
    requeued++;
  }
  sweeperRequeued.inc(requeued);
  return requeued;
}

type Logger = { info(obj: object, msg: string): void; error(obj: object, msg: string): void };

export function startSweeper(db: Db, queue: GradingQueue, opts: { staleAfterMs: number; intervalMs: number }, log: Logger) {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const n = await sweepOnce(db, queue, opts.staleAfterMs);
      if (n) log.info({ requeued: n }, "sweeper re-enqueued stale submissions");
    } catch (err) {
      log.error({ err }, "sweep failed; will retry next interval");
    } finally {
      running = false;
    }
  }, opts.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
