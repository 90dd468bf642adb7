import type { Db, Prisma } from "../../db.ts";
import type { Regrade } from "../../generated/prisma/client.ts";
import { enqueueGrading, type GradingQueue } from "../../grading/queue.ts";
import { supersede } from "../../grading/states.ts";
import { isUniqueViolation } from "../../lib/prisma-errors.ts";
import { scoresMayHaveChanged } from "./notify.ts";
import { assignmentRecords } from "./records.ts";

/**
 * The steps of a regrade, shared by the API (a one-submission regrade runs them at once) and the
 * `regrade` job kind (a batch runs them in chunks). Every step is idempotent: an item and the run it
 * started are written in one transaction, and the item's primary key (regrade, submission) refuses a
 * second one, so a duplicate delivery or a resumed job never supersedes a submission twice.
 */

type Logger = { warn(obj: object, msg: string): void };
export interface RegradeDeps {
  db: Db;
  queue: GradingQueue;
  log: Logger;
}

/** An item's run when the pinned revision has no problem of its slug: nothing was regraded, and the report says so. */
export const SKIPPED_RUN = 0;

/** Scores of record per student, as the Regrade row keeps them (`before`) and compares them at the end. */
export type Snapshot = Record<string, { name: string; total: number; problems: Record<string, number | null> }>;

export interface Change {
  userId: string;
  name: string;
  /** The problem's slug; null for the assignment total. */
  problem: string | null;
  old: number | null;
  new: number | null;
}

/** The submissions a regrade covers: those of its scope that existed when it was asked for. */
export function scopeWhere(r: Pick<Regrade, "assignmentId" | "problemSlug" | "userId" | "submissionId" | "createdAt">) {
  return {
    assignmentId: r.assignmentId,
    createdAt: { lte: r.createdAt },
    ...(r.problemSlug ? { problemSlug: r.problemSlug } : {}),
    ...(r.userId ? { userId: r.userId } : {}),
    ...(r.submissionId ? { id: r.submissionId } : {}),
  } satisfies Prisma.SubmissionWhereInput;
}

/** The students' scores of record now (G1's records: the same numbers as the grades API). */
export async function snapshot(db: Db, assignmentId: string, userIds: readonly string[]): Promise<Snapshot> {
  if (!userIds.length) return {};
  const wanted = new Set(userIds);
  const rows = await assignmentRecords(db, assignmentId, userIds.length === 1 ? { userId: userIds[0]! } : {});
  const out: Snapshot = {};
  for (const r of rows) {
    if (!wanted.has(r.userId)) continue;
    out[r.userId] = {
      name: r.name,
      total: r.total.score,
      problems: Object.fromEntries(r.problems.map((p) => [p.problem, p.score])),
    };
  }
  return out;
}

/** Every score of record that differs, per student (by name) and problem, then the total. */
export function diff(before: Snapshot, after: Snapshot): Change[] {
  const changes: Change[] = [];
  const users = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  const nameOf = (u: string) => after[u]?.name ?? before[u]?.name ?? "";
  users.sort((x, y) => nameOf(x).localeCompare(nameOf(y)) || (x < y ? -1 : 1));
  for (const userId of users) {
    const b = before[userId];
    const a = after[userId];
    const slugs = [...new Set([...Object.keys(b?.problems ?? {}), ...Object.keys(a?.problems ?? {})])].sort();
    for (const problem of slugs) {
      const old = b?.problems[problem] ?? null;
      const now = a?.problems[problem] ?? null;
      if (old !== now) changes.push({ userId, name: nameOf(userId), problem, old, new: now });
    }
    const oldTotal = b?.total ?? null;
    const newTotal = a?.total ?? null;
    if (oldTotal !== newTotal) changes.push({ userId, name: nameOf(userId), problem: null, old: oldTotal, new: newTotal });
  }
  return changes;
}

/**
 * Supersedes up to `limit` submissions of the regrade that have no item yet: each moves to the pinned
 * revision's problem of its slug and gets a new run (its earlier grades stay), and its item records
 * that run. Grading jobs are enqueued after the commit; if Redis is away the grading outbox finds the
 * queued runs. Returns how many submissions it looked at (0: every item exists).
 */
export async function createItems(deps: RegradeDeps, regradeId: string, limit: number): Promise<number> {
  const { db } = deps;
  const r = await db.regrade.findUniqueOrThrow({ where: { id: regradeId } });
  const subs = await db.submission.findMany({
    where: { ...scopeWhere(r), regradeItems: { none: { regradeId } } },
    orderBy: { id: "asc" },
    take: limit,
    select: { id: true, problemSlug: true },
  });
  if (!subs.length) return 0;
  const { revisionId } = await db.assignment.findUniqueOrThrow({ where: { id: r.assignmentId }, select: { revisionId: true } });
  const problems = await db.problem.findMany({ where: { revisionId }, select: { id: true, slug: true } });
  const bySlug = new Map(problems.map((p) => [p.slug, p.id]));
  let runs: { submissionId: string; run: number }[];
  try {
    runs = await db.$transaction(async (tx) => {
      const started: { submissionId: string; run: number }[] = [];
      const items: Prisma.RegradeItemCreateManyInput[] = [];
      for (const s of subs) {
        const problemId = bySlug.get(s.problemSlug);
        if (!problemId) {
          items.push({ regradeId, submissionId: s.id, run: SKIPPED_RUN });
          continue;
        }
        const u = await supersede(tx, s.id, problemId);
        if (!u) continue; // deleted meanwhile
        items.push({ regradeId, submissionId: s.id, run: u.run });
        started.push({ submissionId: s.id, run: u.run });
      }
      await tx.regradeItem.createMany({ data: items });
      await tx.regrade.update({ where: { id: regradeId }, data: { status: "running", updatedAt: new Date() } });
      return started;
    });
  } catch (e) {
    // Another delivery of this job wrote these items first; its transaction superseded them, ours rolled back.
    if (!isUniqueViolation(e)) throw e;
    return subs.length;
  }
  for (const job of runs)
    await enqueueGrading(deps.queue, job).catch((err: unknown) =>
      deps.log.warn({ err, ...job }, "enqueue failed; the grading outbox will pick the run up"),
    );
  return subs.length;
}

export interface Progress {
  items: number;
  done: number;
  failed: number;
  skipped: number;
}

/** Items done: skipped, or the submission finished (graded, rejected or failed) at the item's run or a later one. */
export async function progress(db: Db, regradeId: string): Promise<Progress> {
  const rows = await db.$queryRaw<Progress[]>`
    SELECT count(*)::int AS items,
      count(*) FILTER (WHERE i.run = ${SKIPPED_RUN}
        OR (s."gradingRun" >= i.run AND s.status IN ('graded', 'rejected', 'failed')))::int AS done,
      count(*) FILTER (WHERE i.run <> ${SKIPPED_RUN} AND s."gradingRun" >= i.run AND s.status = 'failed')::int AS failed,
      count(*) FILTER (WHERE i.run = ${SKIPPED_RUN})::int AS skipped
    FROM "RegradeItem" i JOIN "Submission" s ON s.id = i."submissionId"
    WHERE i."regradeId" = ${regradeId}::uuid`;
  return rows[0]!;
}

/**
 * Ends the regrade once every item exists and is done: the scores of record now, compared with
 * `before`, become `changes`. The status moves to done by a conditional update, so of the job and
 * any number of report readers racing here exactly one writes the report and notifies.
 * Returns true when the regrade is done (by this call or an earlier one).
 */
export async function tryFinish(deps: RegradeDeps, regradeId: string): Promise<boolean> {
  const r = await deps.db.regrade.findUniqueOrThrow({ where: { id: regradeId } });
  if (r.status === "done") return true;
  const p = await progress(deps.db, regradeId);
  if (p.items < r.total || p.done < p.items) return false;
  const before = (r.before ?? {}) as Snapshot;
  const changes = diff(before, await snapshot(deps.db, r.assignmentId, Object.keys(before)));
  const won = await deps.db.regrade.updateMany({
    where: { id: regradeId, status: { not: "done" } },
    data: { status: "done", total: p.items, changes: changes as unknown as Prisma.InputJsonValue, finishedAt: new Date() },
  });
  if (won.count === 1) {
    const users = [...new Set(changes.map((c) => c.userId))];
    if (users.length) await scoresMayHaveChanged(deps, r.assignmentId, users);
  }
  return true;
}
