import type { Db, Prisma } from "../../db.ts";
import type { Assignment } from "../../generated/prisma/client.ts";
import { AppError } from "../../errors.ts";
import { RAN_REJECTION_CODES, windowAt, type AssignmentPolicy, type StudentPolicy } from "./policy.ts";
import { loadStudentPolicy } from "./records.ts";

/**
 * The assignment's rules where a student submits or opens a timed assignment: the window refusal in the API's
 * words, the exam clock, and the database filter that counts used attempts exactly as policy.usesAttempt does.
 */

/** A closed window as the 403 the API answers (codes ASSIGNMENT_NOT_OPEN, ASSIGNMENT_CLOSED, EXAM_TIME_OVER). */
export function windowRefusal(p: StudentPolicy, now: Date): AppError | null {
  const w = windowAt(p, now);
  if (w.open) return null;
  const at = w.at.toISOString();
  switch (w.reason) {
    case "ASSIGNMENT_NOT_OPEN":
      return new AppError(403, w.reason, `This assignment opens at ${at}.`, { opensAt: w.at });
    case "EXAM_TIME_OVER":
      return new AppError(403, w.reason, `Your time for this exam ended at ${at}.`, { endedAt: w.at });
    case "ASSIGNMENT_CLOSED":
      return new AppError(403, w.reason, `Submissions closed at ${at}.`, { closedAt: w.at });
  }
}

/**
 * A student's policy for a submission or a view now, with their extension and exam start. On a timed assignment
 * that is open to them, the first call starts their clock (insert-if-absent: of two racing first views, both read
 * the one start that was stored).
 */
export async function policyNow(db: Db, a: Assignment, userId: string, now: Date) {
  const loaded = await loadStudentPolicy(db, a, userId);
  // Not before it opens nor after it closed: the clock starts only for someone who could still answer.
  if (a.timeLimitMinutes === null || loaded.examStartedAt || !windowAt(loaded.policy, now).open) return loaded;
  await db.examStart.createMany({ data: [{ assignmentId: a.id, userId, startedAt: now }], skipDuplicates: true });
  return loadStudentPolicy(db, a, userId);
}

/**
 * Submissions that use an attempt (policy.usesAttempt as a WHERE): never `failed`; `rejected` by a model that ran
 * unless countRunRejections is off; `rejected` before anything ran only if countPrecheckRejections is on; the rest
 * (queued, running, graded) always.
 */
export function usesAttemptWhere(p: Pick<AssignmentPolicy, "countPrecheckRejections" | "countRunRejections">): Prisma.SubmissionWhereInput {
  const ran = [...RAN_REJECTION_CODES];
  const rejected: Prisma.SubmissionWhereInput[] = [];
  if (p.countRunRejections) rejected.push({ status: "rejected", lastErrorCode: { in: ran } });
  if (p.countPrecheckRejections) rejected.push({ status: "rejected", OR: [{ lastErrorCode: null }, { lastErrorCode: { notIn: ran } }] });
  return { OR: [{ status: { in: ["queued", "running", "graded"] } }, ...rejected] };
}

/**
 * The assignment's dates as answer reveal reads them (after_due tests, answer keys): it has closed only once every
 * student's window has, extensions included, so a student still working under an extension never sees the keys
 * and classmates cannot pass them on before then.
 */
export async function revealDates<A extends Pick<Assignment, "id" | "dueAt" | "lateUntil">>(db: Db, a: A): Promise<A> {
  if (!a.dueAt) return a; // never closes, so never reveals
  const ext = await db.extension.aggregate({ where: { assignmentId: a.id }, _max: { dueAt: true, lateUntil: true } });
  const latest = [a.lateUntil, ext._max.dueAt, ext._max.lateUntil].reduce<Date | null>((m, d) => (d && (!m || d > m) ? d : m), null);
  return latest && latest > a.dueAt ? { ...a, lateUntil: latest } : a;
}
