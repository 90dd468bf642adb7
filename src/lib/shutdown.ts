import { hostname } from "node:os";
import type { Worker } from "bullmq";
import type { Db } from "../db.ts";
import { release } from "../grading/states.ts";

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

/**
 * The lease holders of this process: grade-submission.ts names each claim `host:pid:random`, so the runs this
 * process holds are the running ones whose claimedBy starts with `host:pid:`.
 */
export const processHolderPrefix = () => `${hostname()}:${process.pid}:`;

const sleep = (ms: number) => new Promise<"deadline">((resolve) => setTimeout(() => resolve("deadline"), ms).unref());

/**
 * Stops the worker taking jobs at once and lets its active runs finish within graceMs. Past that, every run
 * this process still holds goes back to the queue (states.release, no backoff) so that another worker grades
 * it: its BullMQ job is retaken once this process's lock on it lapses (GRADING_LOCK_MS), and the outbox
 * re-enqueues it regardless. A late finish of a released run is refused by its lost lease.
 * Returns how many runs were released.
 */
export async function drainWorker(worker: Worker, db: Db, graceMs: number, log: Logger): Promise<{ released: number }> {
  const closing = worker.close();
  const ended = await Promise.race([closing.then(() => "closed" as const), sleep(graceMs)]);
  if (ended === "closed") return { released: 0 };
  let released = 0;
  try {
    const held = await db.$queryRaw<{ submissionId: string; run: number; holder: string }[]>`
      SELECT id::text AS "submissionId", "gradingRun" AS run, "claimedBy" AS holder FROM "Submission"
      WHERE status = 'running' AND starts_with("claimedBy", ${processHolderPrefix()})`;
    for (const r of held)
      if (await release(db, r, r.holder, "The worker grading this shut down before it finished; grading again.", 0)) released++;
    log.warn({ graceMs, released }, "shutdown grace passed: released the runs still grading to the queue");
  } catch (err) {
    // Postgres is away: the leases this process held simply expire (GRADING_LOCK_MS) and other workers retake the runs.
    log.warn({ err, graceMs }, "shutdown grace passed and the held runs could not be released; their leases will expire");
  }
  return { released };
}

/** Runs `step`, but gives up waiting for it after ms (a hung dependency must not keep the process alive). */
export async function bounded(step: () => Promise<unknown>, ms: number): Promise<void> {
  await Promise.race([step().catch(() => undefined), sleep(ms)]);
}
