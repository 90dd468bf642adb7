import { gradeResultSchema, type TestResult } from "../../graders/types.ts";
import type { Assignment, Grade, Problem, ProblemSetRevision, ScoreOverride, Submission } from "../generated/prisma/client.ts";

type Row = Submission & {
  assignment: Assignment;
  grades: (Grade & { problem: Problem & { revision: ProblemSetRevision } })[];
  /** The current override first (newest not cleared); absent or empty: none. */
  overrides?: ScoreOverride[];
};

/**
 * What a view reads: the grades newest run first (a run superseded by a regrade may still finish after it, so the
 * current grade is the latest run's), and the newest override not cleared, which is the score while it stands.
 */
export const viewInclude = {
  assignment: true,
  grades: {
    orderBy: [{ run: "desc" as const }, { createdAt: "desc" as const }],
    include: { problem: { include: { revision: true } } },
  },
  overrides: { where: { clearedAt: null }, orderBy: [{ createdAt: "desc" as const }, { id: "desc" as const }], take: 1 },
};

const feedbackSchema = gradeResultSchema.shape.feedback;

/**
 * When an assignment's answers may be shown: once no student can submit any more, i.e. after
 * lateUntil when late work is accepted, else after dueAt; never for an assignment without a due
 * date. Running out of attempts early reveals nothing: classmates may still be answering.
 */
export function closedAt(a: Pick<Assignment, "dueAt" | "lateUntil">): Date | null {
  if (!a.dueAt) return null;
  return a.lateUntil && a.lateUntil > a.dueAt ? a.lateUntil : a.dueAt;
}

const isClosed = (a: Pick<Assignment, "dueAt" | "lateUntil">, now: Date) => {
  const at = closedAt(a);
  return at !== null && now > at;
};

type StudentTest = Omit<TestResult, "visibility" | "staffMessage">;

/**
 * What a test shows a student, the same rule for every grader: hidden tests never; `after_due`
 * tests and answer keys once the assignment closed; a hint only while the test is not passed;
 * staff-only messages never.
 */
export function studentTests(tests: TestResult[], closed: boolean): StudentTest[] {
  return tests
    .filter((t) => t.visibility === "visible" || (t.visibility === "after_due" && closed))
    .map(({ visibility: _v, staffMessage: _s, hint, answerKey, ...t }) => ({
      ...t,
      ...(hint !== undefined && t.status !== "passed" ? { hint } : {}),
      ...(answerKey !== undefined && closed ? { answerKey } : {}),
    }));
}

/**
 * The API shape of a submission; the newest grade is the current one, and a manual override replaces its score.
 * Students see the override's score and comment; staff also see who gave it and how it was graded.
 */
export function submissionView(s: Row, staff: boolean, now: Date) {
  const grade = s.grades[0];
  const feedback = grade ? feedbackSchema.parse(grade.feedback) : null;
  const o = s.overrides?.[0];
  const override = o
    ? { score: o.score, comment: o.comment, at: o.createdAt, ...(staff ? { byId: o.byId, groupId: o.groupId } : {}) }
    : null;
  const base = {
    id: s.id,
    assignmentId: s.assignmentId,
    problem: s.problemSlug,
    userId: s.userId,
    status: s.status,
    attempt: s.attempt,
    score: override ? override.score : (grade?.score ?? null),
    maxScore: grade?.maxScore ?? null,
    override,
    lateFactor: s.lateFactor,
    feedback:
      feedback && (staff ? feedback : { summary: feedback.summary, tests: studentTests(feedback.tests, isClosed(s.assignment, now)) }),
    createdAt: s.createdAt,
    gradedAt: s.gradedAt,
  };
  if (!staff) return base;
  return {
    ...base,
    answer: s.answer,
    modelSha256: s.modelSha256,
    lastError: s.lastError,
    lastErrorCode: s.lastErrorCode,
    needsReview: grade?.needsReview ?? false,
    grades: s.grades.map((g) => ({
      id: g.id,
      run: g.run,
      kind: g.kind,
      status: g.status,
      score: g.score,
      rawScore: g.rawScore,
      maxScore: g.maxScore,
      graderType: g.graderType,
      graderVersion: g.graderVersion,
      problemRevision: g.problem.revision.revision,
      executionProvider: g.executionProvider,
      ortVersion: g.ortVersion,
      inputSeed: g.inputSeed,
      isolation: g.isolation,
      hashes: g.hashes,
      durationMs: g.durationMs,
      comment: g.comment,
      createdAt: g.createdAt,
    })),
  };
}
