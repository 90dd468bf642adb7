/**
 * Reading grading progress straight from Postgres: how many submissions of an assignment are done, and the time
 * from accept (createdAt) to grade (gradedAt, or the status change for rejected/failed ones) of each.
 */
import pg from "pg";
import { sleep } from "./platform.ts";
import { summarize, type Summary } from "./stats.ts";

const DONE = "status IN ('graded', 'rejected', 'failed')";

export async function doneCount(pool: pg.Pool, assignmentId: string): Promise<{ total: number; done: number; failed: number }> {
  const { rows } = await pool.query<{ total: number; done: number; failed: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE ${DONE})::int AS done, count(*) FILTER (WHERE status = 'failed')::int AS failed
       FROM "Submission" WHERE "assignmentId" = $1`,
    [assignmentId],
  );
  return rows[0]!;
}

/** Polls until every submission of the assignment is done or `timeoutMs` passes; returns when the last was done. */
export async function waitAllDone(pool: pg.Pool, assignmentId: string, timeoutMs: number, onTick?: (done: number, total: number) => void) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const c = await doneCount(pool, assignmentId);
    onTick?.(c.done, c.total);
    if (c.done >= c.total || Date.now() > until) return c;
    await sleep(250);
  }
}

/** Accept-to-grade in ms per submission, optionally only those whose problem slug matches `slugs`. */
export async function acceptToGrade(
  pool: pg.Pool,
  assignmentId: string,
  slugs?: string[],
): Promise<Summary & { firstMs: number; lastMs: number }> {
  const { rows } = await pool.query<{ ms: number; created: Date; done: Date }>(
    `SELECT extract(epoch FROM (coalesce("gradedAt", "statusAt") - "createdAt")) * 1000 AS ms, "createdAt" AS created,
            coalesce("gradedAt", "statusAt") AS done
       FROM "Submission" WHERE "assignmentId" = $1 AND ${DONE} AND ($2::text[] IS NULL OR "problemSlug" = ANY($2))`,
    [assignmentId, slugs ?? null],
  );
  const first = Math.min(...rows.map((r) => r.created.getTime()));
  const last = Math.max(...rows.map((r) => r.done.getTime()));
  return { ...summarize(rows.map((r) => Number(r.ms))), firstMs: first, lastMs: last };
}
