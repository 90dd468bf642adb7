import type pg from "pg";
import QueryStream from "pg-query-stream";
import {
  problemRecord,
  studentPolicy,
  totalOf,
  type AssignmentPolicy,
  type ExtensionFacts,
  type ProblemRecord,
  type SubmissionFacts,
} from "./policy.ts";

/**
 * A course's scores of record, one student at a time, from a Postgres cursor: the exports and the statistics
 * read every student of a course, so nothing here may grow with the number of students. Rows arrive ordered by
 * student; a student's rows are folded into their records when the next student's first row shows up.
 */

export interface ExportProblem {
  slug: string;
  title: string;
  points: number;
  graderType: string;
}

/** An assignment as the exports see it: its rules and the problems of its pinned revision, in order. */
export interface ExportAssignment {
  id: string;
  title: string;
  lmsAssignmentId: string | null;
  policy: AssignmentPolicy;
  problems: ExportProblem[];
  maxTotal: number;
}

/** A submission with what the statistics read besides the policy's facts (only when asked for). */
export interface ExportSubmission extends SubmissionFacts {
  /** Choice answers of grades below full marks: the selected option ids. */
  selected?: unknown;
  /** Feedback of grades below full marks. */
  feedback?: unknown;
}

export interface AssignmentGrades {
  assignment: ExportAssignment;
  problems: ProblemRecord[];
  total: { score: number; maxScore: number };
  /** Whether any problem has a score of record (a total of 0 from nothing is "no grade" in LMS files). */
  graded: boolean;
  /** Per problem slug, the submissions behind the records (for the statistics). */
  submissions: Map<string, ExportSubmission[]>;
}

export interface StudentGrades {
  userId: string;
  name: string;
  email: string;
  assignments: AssignmentGrades[];
}

/** Epoch milliseconds of a UTC `timestamp` column (extract treats a timestamp without zone as UTC). */
const ms = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;

/**
 * One row per submission of a student (one row with nulls for a student without any), with the grade of the
 * submission's current run, its newest override not cleared, and the student's extension and exam start.
 * Times come as epoch milliseconds: Prisma stores UTC in `timestamp` (which pg would read as local time), and a
 * number costs far less to parse than a date string, 300,000 times over.
 * The newest override per submission is one hash join on the (few) overrides, not a probe per submission row.
 */
export const EXPORT_SQL = `
SELECT u."id" AS "userId", u."name", u."email",
       s."assignmentId", s."problemSlug", s."id" AS "submissionId", s."attempt",
       ${ms('s."createdAt"')} AS "createdAt", s."status"::text AS "status", s."lastErrorCode",
       g."rawScore", g."maxScore",
       ${ms('x."dueAt"')} AS "xDueAt", ${ms('x."lateUntil"')} AS "xLateUntil",
       x."extraAttempts" AS "xAttempts", x."extraMinutes" AS "xMinutes",
       ${ms('es."startedAt"')} AS "startedAt",
       o."score" AS "oScore", o."comment" AS "oComment", o."byId" AS "oBy", ${ms('o."createdAt"')} AS "oAt",
       CASE WHEN $3::boolean AND g."rawScore" < g."maxScore" THEN s."answer" -> 'selected' END AS "selected",
       CASE WHEN $3::boolean AND g."rawScore" < g."maxScore" THEN g."feedback" END AS "feedback"
FROM "Enrollment" e
JOIN "User" u ON u."id" = e."userId"
LEFT JOIN "Submission" s ON s."userId" = e."userId" AND s."assignmentId" = ANY($2::uuid[])
LEFT JOIN "Grade" g ON g."submissionId" = s."id" AND g."run" = s."gradingRun" AND g."kind" = 'auto'
LEFT JOIN "Extension" x ON x."assignmentId" = s."assignmentId" AND x."userId" = e."userId"
LEFT JOIN "ExamStart" es ON es."assignmentId" = s."assignmentId" AND es."userId" = e."userId"
LEFT JOIN (
  SELECT DISTINCT ON (o."submissionId") o."submissionId", o."score", o."comment", o."byId", o."createdAt"
  FROM "ScoreOverride" o JOIN "Submission" os ON os."id" = o."submissionId"
  WHERE os."assignmentId" = ANY($2::uuid[]) AND o."clearedAt" IS NULL
  ORDER BY o."submissionId", o."createdAt" DESC, o."id" DESC
) o ON o."submissionId" = s."id"
WHERE e."courseId" = $1::uuid AND e."role" = 'student'
ORDER BY u."name" COLLATE "C", u."email", u."id", s."assignmentId", s."problemSlug", s."createdAt", s."attempt"`;

/** Column positions in EXPORT_SQL's rows (read as arrays: no object with 23 named keys per row). */
const [USER, NAME, EMAIL, ASSIGNMENT, SLUG, SUBMISSION, ATTEMPT, CREATED, STATUS, ERROR, RAW, MAX] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const [X_DUE, X_LATE, X_ATTEMPTS, X_MINUTES, STARTED, O_SCORE, O_COMMENT, O_BY, O_AT, SELECTED, FEEDBACK] = [
  12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
];
type Row = unknown[];

interface PerAssignment {
  extension: ExtensionFacts | null;
  startedAt: Date | null;
  submissions: Map<string, ExportSubmission[]>;
}

interface Pending {
  userId: string;
  name: string;
  email: string;
  byAssignment: Map<string, PerAssignment>;
}

/** Rows fetched per round trip: enough to amortise the round trips, small enough to stay a few hundred kB. */
const BATCH = 1000;

/**
 * The export's rows, streamed, on a client in a read-only transaction (one snapshot) that the caller ends (COMMIT, or
 * dropping the connection). SET LOCAL, for this transaction only: the sort must not spill to disk at the 4 MB default
 * work_mem (10,000 students × 20 problems sort in 73 MB in memory; a larger course spills: slower, same rows), and JIT
 * compiling this one big query costs seconds and saves nothing on a plain scan-join-sort. Also the benchmark's baseline.
 */
export async function exportCursor(client: pg.ClientBase, courseId: string, assignmentIds: string[], details: boolean) {
  await client.query("BEGIN READ ONLY");
  await client.query("SET LOCAL jit = off");
  await client.query("SET LOCAL work_mem = '128MB'");
  return client.query(
    new QueryStream(EXPORT_SQL, [courseId, assignmentIds, details], { batchSize: BATCH, highWaterMark: BATCH, rowMode: "array" }),
  );
}

/**
 * Streams the course's students (enrolments with the student role) with their scores of record in `assignments`.
 * The pg client stays checked out until the generator ends; a consumer that stops early (a client that hangs up)
 * ends the cursor, and the connection is then discarded rather than reused mid-query.
 */
export async function* streamStudentGrades(
  pool: pg.Pool,
  courseId: string,
  assignments: ExportAssignment[],
  opts: { details?: boolean } = {},
): AsyncGenerator<StudentGrades> {
  const client = await pool.connect();
  let finished = false;
  try {
    const rows = await exportCursor(
      client,
      courseId,
      assignments.map((a) => a.id),
      opts.details ?? false,
    );
    let current = null as Pending | null;
    for await (const row of rows as AsyncIterable<Row>) {
      const userId = row[USER] as string;
      if (current?.userId !== userId) {
        if (current) yield finish(current, assignments);
        current = { userId, name: row[NAME] as string, email: row[EMAIL] as string, byAssignment: new Map() };
      }
      add(current, row);
    }
    if (current) yield finish(current, assignments);
    await client.query("COMMIT");
    finished = true;
  } finally {
    client.release(!finished);
  }
}

const date = (ms: unknown): Date | null => (ms === null ? null : new Date(ms as number));

function add(student: Pending, row: Row): void {
  const assignmentId = row[ASSIGNMENT] as string | null;
  const slug = row[SLUG] as string | null;
  if (!assignmentId || !slug || !row[SUBMISSION]) return;
  let per = student.byAssignment.get(assignmentId);
  if (!per) {
    const extension =
      row[X_ATTEMPTS] === null
        ? null
        : {
            dueAt: date(row[X_DUE]),
            lateUntil: date(row[X_LATE]),
            extraAttempts: row[X_ATTEMPTS] as number,
            extraMinutes: (row[X_MINUTES] as number | null) ?? 0,
          };
    per = { extension, startedAt: date(row[STARTED]), submissions: new Map() };
    student.byAssignment.set(assignmentId, per);
  }
  let list = per.submissions.get(slug);
  if (!list) per.submissions.set(slug, (list = []));
  const sub: ExportSubmission = {
    id: row[SUBMISSION] as string,
    attempt: row[ATTEMPT] as number,
    createdAt: new Date(row[CREATED] as number),
    status: row[STATUS] as SubmissionFacts["status"],
    lastErrorCode: row[ERROR] as string | null,
    rawScore: row[RAW] as number | null,
    maxScore: row[MAX] as number | null,
    override:
      row[O_SCORE] === null
        ? null
        : {
            score: row[O_SCORE] as number,
            comment: row[O_COMMENT] as string | null,
            byId: row[O_BY] as string | null,
            at: new Date(row[O_AT] as number),
          },
  };
  if (row[SELECTED] != null) sub.selected = row[SELECTED];
  if (row[FEEDBACK] != null) sub.feedback = row[FEEDBACK];
  list.push(sub);
}

/** The student's records: the same pure policy as the grades API, per assignment and problem of the pinned revision. */
function finish(student: Pending, assignments: ExportAssignment[]): StudentGrades {
  return {
    userId: student.userId,
    name: student.name,
    email: student.email,
    assignments: assignments.map((a) => {
      const per = student.byAssignment.get(a.id);
      const policy = studentPolicy(a.policy, per?.extension ?? null, per?.startedAt ?? null);
      const submissions = per?.submissions ?? new Map<string, ExportSubmission[]>();
      const problems = a.problems.map((p) => problemRecord(policy, p, submissions.get(p.slug) ?? []));
      return { assignment: a, problems, total: totalOf(problems), graded: problems.some((r) => r.score !== null), submissions };
    }),
  };
}
