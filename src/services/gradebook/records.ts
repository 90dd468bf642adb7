import { Prisma, type Db } from "../../db.ts";
import type { Assignment } from "../../generated/prisma/client.ts";
import {
  assignmentPolicy,
  problemRecord,
  studentPolicy,
  totalOf,
  type ExtensionFacts,
  type OverrideFacts,
  type ProblemRecord,
  type StudentPolicy,
  type SubmissionFacts,
} from "./policy.ts";

/**
 * Scores of record read from the database: the facts policy.ts needs, loaded in a fixed number of queries
 * (never one per student or submission), so the grades API, the exports, the regrade report and the LMS
 * passback all compute the same numbers the same way.
 */

type Tx = Db | Prisma.TransactionClient;

/** Re-exported for the callers that import it from here (the submit path). */
export { assignmentPolicy };

const extensionFacts = (e: ExtensionFacts | null): ExtensionFacts | null =>
  e && { dueAt: e.dueAt, lateUntil: e.lateUntil, extraAttempts: e.extraAttempts, extraMinutes: e.extraMinutes };

/** One student's policy (their extension and exam start folded in): what the submit path and the assignment view use. */
export async function loadStudentPolicy(db: Tx, a: Assignment, userId: string) {
  const [ext, start] = await Promise.all([
    db.extension.findUnique({ where: { assignmentId_userId: { assignmentId: a.id, userId } } }),
    a.timeLimitMinutes === null ? null : db.examStart.findUnique({ where: { assignmentId_userId: { assignmentId: a.id, userId } } }),
  ]);
  const extension = extensionFacts(ext);
  return {
    policy: studentPolicy(assignmentPolicy(a), extension, start?.startedAt ?? null),
    extension,
    examStartedAt: start?.startedAt ?? null,
  };
}

export interface StudentRecord {
  userId: string;
  name: string;
  email: string;
  policy: {
    dueAt: Date | null;
    lateUntil: Date | null;
    maxAttempts: number | null;
    examEndsAt: Date | null;
    extension: ExtensionFacts | null;
  };
  problems: ProblemRecord[];
  total: { score: number; maxScore: number };
}

type SubmissionRow = Omit<SubmissionFacts, "override"> & { userId: string; problemSlug: string };
type OverrideRow = { submissionId: string; score: number; comment: string | null; byId: string | null; createdAt: Date };

/**
 * The scores of record of an assignment's students (current enrolments with the student role; staff submissions are
 * tries, not grades), or of one student with `userId` (an empty list when they are not a student of the course).
 * Problems are those of the assignment's pinned revision, in order; submissions count by problem slug whatever
 * revision graded them. Each submission is worth its current run's automatic grade, or its newest override not cleared.
 */
export async function assignmentRecords(db: Tx, assignmentId: string, opts: { userId?: string } = {}): Promise<StudentRecord[]> {
  const a = await db.assignment.findUnique({
    where: { id: assignmentId },
    include: { revision: { include: { problems: { orderBy: { position: "asc" }, select: { slug: true, points: true } } } } },
  });
  if (!a) return [];
  const { userId } = opts;
  const onlyUser = userId ? Prisma.sql`AND s."userId" = ${userId}::uuid` : Prisma.empty;
  const [enrolments, submissions, overrides, extensions, starts] = await Promise.all([
    db.enrollment.findMany({
      where: { courseId: a.courseId, role: "student", ...(userId ? { userId } : {}) },
      select: { user: { select: { id: true, name: true, email: true } } },
      orderBy: [{ user: { name: "asc" } }, { user: { email: "asc" } }],
    }),
    // The grade of the submission's current run only: a superseded run's grade is history, not a score.
    db.$queryRaw<SubmissionRow[]>`
      SELECT s."id", s."userId", s."problemSlug", s."attempt", s."createdAt", s."status"::text AS "status", s."lastErrorCode",
             g."rawScore", g."maxScore"
      FROM "Submission" s
      LEFT JOIN "Grade" g ON g."submissionId" = s."id" AND g."run" = s."gradingRun" AND g."kind" = 'auto'
      WHERE s."assignmentId" = ${a.id}::uuid ${onlyUser}`,
    db.$queryRaw<OverrideRow[]>`
      SELECT DISTINCT ON (o."submissionId") o."submissionId", o."score", o."comment", o."byId", o."createdAt"
      FROM "ScoreOverride" o JOIN "Submission" s ON s."id" = o."submissionId"
      WHERE s."assignmentId" = ${a.id}::uuid AND o."clearedAt" IS NULL ${onlyUser}
      ORDER BY o."submissionId", o."createdAt" DESC, o."id" DESC`,
    db.extension.findMany({ where: { assignmentId: a.id, ...(userId ? { userId } : {}) } }),
    a.timeLimitMinutes === null ? [] : db.examStart.findMany({ where: { assignmentId: a.id, ...(userId ? { userId } : {}) } }),
  ]);

  const overrideOf = new Map<string, OverrideFacts>(
    overrides.map((o) => [o.submissionId, { score: o.score, comment: o.comment, byId: o.byId, at: o.createdAt }]),
  );
  const byStudent = new Map<string, Map<string, SubmissionFacts[]>>();
  for (const s of submissions) {
    const perProblem = byStudent.get(s.userId) ?? new Map<string, SubmissionFacts[]>();
    byStudent.set(s.userId, perProblem);
    const list = perProblem.get(s.problemSlug) ?? [];
    perProblem.set(s.problemSlug, list);
    list.push({
      id: s.id,
      attempt: s.attempt,
      createdAt: s.createdAt,
      status: s.status,
      lastErrorCode: s.lastErrorCode,
      rawScore: s.rawScore,
      maxScore: s.maxScore,
      override: overrideOf.get(s.id) ?? null,
    });
  }
  const extensionOf = new Map(extensions.map((e) => [e.userId, extensionFacts(e)]));
  const startOf = new Map(starts.map((e) => [e.userId, e.startedAt]));
  const base = assignmentPolicy(a);

  return enrolments.map(({ user }) => {
    const extension = extensionOf.get(user.id) ?? null;
    const policy: StudentPolicy = studentPolicy(base, extension, startOf.get(user.id) ?? null);
    const subs = byStudent.get(user.id);
    const problems = a.revision.problems.map((p) => problemRecord(policy, p, subs?.get(p.slug) ?? []));
    return {
      userId: user.id,
      name: user.name,
      email: user.email,
      policy: {
        dueAt: policy.dueAt,
        lateUntil: policy.lateUntil,
        maxAttempts: policy.maxAttempts,
        examEndsAt: policy.examEndsAt,
        extension,
      },
      problems,
      total: totalOf(problems),
    };
  });
}
