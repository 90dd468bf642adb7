import { z } from "zod";
import type { Db, Prisma } from "../db.ts";
import { queueConfig, retryOptions, type GradingQueue, type RetryPolicy } from "../grading/queue.ts";
import { assignmentRecords, type StudentRecord } from "../services/gradebook/records.ts";
import { SCOPE } from "./claims.ts";

/**
 * Score passback, the producing side: the durable outbox is the ScorePassback table. For each (LTI context,
 * assignment, student) there is at most ONE row not yet sent (pending, or dead until retried); a newer score
 * replaces that row's score instead of queueing a second one, so the LMS gets the latest score, once. Rows are
 * written under a per-key advisory lock; the sending side (passback-send.ts) marks a row sent only if its score is
 * still the one it posted (compare-and-set), so a score that arrives while an older one is in flight is sent next.
 */

export const PASSBACK_JOB = "lti-passback";
export const passbackPayload = z.object({ passbackId: z.string().uuid() });
export type PassbackPayload = z.infer<typeof passbackPayload>;
export const passbackJobId = (p: PassbackPayload) => `lti-passback-${p.passbackId}`;
/** BullMQ's own retries only cover unexpected errors (Postgres away); the LMS's answers are retried by the row's policy. */
export const passbackRetry = (): RetryPolicy => ({ attempts: 5, backoffMs: 2_000 });

type Logger = { warn(obj: object, msg: string): void };
type Deps = { db: Db; queue: GradingQueue; log: Logger };

const LIVE = new Set(["waiting", "paused", "delayed", "active", "prioritized", "waiting-children"]);

/**
 * Adds the job unless one is live. A finished job of the same id (kept by BullMQ for an hour) is removed first:
 * a row sent back to pending, or a dead letter retried, must get a new delivery, not BullMQ's "already done".
 */
export async function enqueueJob(queue: GradingQueue, name: string, data: object, jobId: string, retry: RetryPolicy): Promise<void> {
  const existing = await queue.getJob(jobId);
  if (existing) {
    if (LIVE.has(await existing.getState())) return;
    await existing.remove().catch(() => undefined);
  }
  await queue.add(name, data, { jobId, ...(queueConfig(queue) ? retryOptions(retry) : {}) });
}

export const enqueuePassback = (queue: GradingQueue, passbackId: string) =>
  enqueueJob(queue, PASSBACK_JOB, passbackPayload.parse({ passbackId }), passbackJobId({ passbackId }), passbackRetry());

const same = (a: number, b: number) => Math.abs(a - b) < 1e-9;

/** What the LMS's gradebook shows next to the score: each problem's part of it. */
export function scoreComment(r: StudentRecord): string {
  const parts = r.problems.map((p) => `${p.problem} ${p.score === null ? "–" : round(p.score)}/${round(p.maxScore)}`);
  return `Autograder: ${round(r.total.score)} / ${round(r.total.maxScore)} (${parts.join(", ")})`.slice(0, 1000);
}
const round = (x: number) => Math.round(x * 1000) / 1000;

/**
 * scoresMayHaveChanged's body: for every linked LTI context of the assignment's course (platform enabled, score
 * scope granted) and every listed user with an LTI identity on that platform, the score of record is recomputed and,
 * if it differs from the last one sent or waiting, written to the outbox and a delivery enqueued.
 * Returns the ids of the rows that need a delivery.
 */
export async function queuePassbacks(deps: Deps, assignmentId: string, userIds: readonly string[]): Promise<string[]> {
  const { db } = deps;
  if (!userIds.length) return [];
  // The assignment's course's contexts in one query: every grade asks, and most courses have none.
  const contexts = (
    await db.ltiContext.findMany({
      where: { course: { assignments: { some: { id: assignmentId } } }, platform: { disabledAt: null } },
      select: { id: true, platformId: true, scopes: true },
    })
  ).filter((c) => c.scopes.includes(SCOPE.score));
  if (!contexts.length) return [];
  const links = await db.ltiUser.findMany({
    where: { userId: { in: [...new Set(userIds)] }, platformId: { in: contexts.map((c) => c.platformId) } },
    select: { userId: true, platformId: true },
  });
  const ids: string[] = [];
  for (const link of links)
    for (const c of contexts.filter((x) => x.platformId === link.platformId)) {
      const id = await writeScore(db, { contextRowId: c.id, assignmentId, userId: link.userId });
      if (id) ids.push(id);
    }
  for (const id of new Set(ids)) await enqueuePassback(deps.queue, id);
  return ids;
}

type Key = { contextRowId: string; assignmentId: string; userId: string };

/**
 * The one unsent row of the key gets the score of record (or a new row is made); null when the LMS has it already
 * or there is nothing to send. The score is computed INSIDE the key's lock: of two notifications racing (two grades
 * finishing at once), the one that writes last also computed last, from every grade committed before it, so a stale
 * score can never overwrite a newer one.
 */
async function writeScore(db: Db, key: Key): Promise<string | null> {
  return db.$transaction(async (tx: Prisma.TransactionClient) => {
    await tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext(${`lti-passback:${key.contextRowId}:${key.assignmentId}:${key.userId}`})::bigint)`;
    // The score of record, computed exactly as the gradebook does; not a student of the course, or nothing graded
    // yet → nothing to send (no 0 before the first grade).
    const [record] = await assignmentRecords(tx, key.assignmentId, { userId: key.userId });
    if (!record || record.problems.every((p) => p.score === null)) return null;
    const score = { scoreGiven: record.total.score, scoreMaximum: record.total.maxScore, comment: scoreComment(record) };
    const latest = await tx.scorePassback.findFirst({ where: key, orderBy: [{ createdAt: "desc" }, { id: "desc" }] });
    if (latest && same(latest.scoreGiven, score.scoreGiven) && same(latest.scoreMaximum, score.scoreMaximum))
      // Unchanged: a pending row may have lost its job (make sure it has one); sent and dead rows stay as they are.
      return latest.status === "pending" ? latest.id : null;
    if (latest && latest.status !== "sent") {
      // Replace the unsent score. The status is part of the condition: a sender that marked it sent a moment ago
      // wins, and the new score gets a row of its own below. A dead letter superseded by a new score is retried.
      const { count } = await tx.scorePassback.updateMany({
        where: { id: latest.id, status: latest.status },
        data: { ...score, status: "pending", ...(latest.status === "dead" ? { attempts: 0 } : {}) },
      });
      if (count === 1) return latest.id;
    }
    return (await tx.scorePassback.create({ data: { ...key, ...score } })).id;
  });
}
