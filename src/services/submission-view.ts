import { gradeResultSchema, type TestResult } from "../../graders/types.ts";
import type { Assignment, Grade, Problem, ProblemSetRevision, Submission } from "../generated/prisma/client.ts";

type Row = Submission & { assignment: Assignment; grades: (Grade & { problem: Problem & { revision: ProblemSetRevision } })[] };

const feedbackSchema = gradeResultSchema.shape.feedback;

/** What a test shows a student: hidden tests never, `after_due` ones once the due date passed. */
function studentTests(tests: TestResult[], dueAt: Date | null, now: Date): Omit<TestResult, "visibility">[] {
  const pastDue = dueAt !== null && now > dueAt;
  return tests.filter((t) => t.visibility === "visible" || (t.visibility === "after_due" && pastDue)).map(({ visibility: _, ...t }) => t);
}

/** The API shape of a submission; the newest grade is the current one. Staff also see how it was graded. */
export function submissionView(s: Row, staff: boolean, now: Date) {
  const grade = s.grades[0];
  const feedback = grade ? feedbackSchema.parse(grade.feedback) : null;
  const base = {
    id: s.id,
    assignmentId: s.assignmentId,
    problem: s.problemSlug,
    userId: s.userId,
    status: s.status,
    attempt: s.attempt,
    score: grade?.score ?? null,
    maxScore: grade?.maxScore ?? null,
    lateFactor: s.lateFactor,
    feedback: feedback && {
      summary: feedback.summary,
      tests: staff ? feedback.tests : studentTests(feedback.tests, s.assignment.dueAt, now),
    },
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
