import { randomUUID } from "node:crypto";
import type pg from "pg";

/**
 * The benchmark's gradebook, written by Postgres itself (INSERT … SELECT generate_series), so seeding 300k
 * submissions takes seconds: 10,000 students in one course, 2 assignments of 10 problems each (20 problems per
 * student), 1 or 2 graded submissions per (student, problem), the second assignment with a due date that about a
 * third of its submissions miss (late penalty 10 %/day, late until 3 days after), and an override on 2 % of submissions.
 * Every 97th student has a hostile name (quote, comma, formula) so the CSV quoting and escaping paths run too.
 */

export const BENCH = { students: 10_000, assignments: 2, problemsPerAssignment: 10, course: "bench-export" } as const;
export const SEED_VERSION = "export-bench-v1";

export async function seed(client: pg.Client): Promise<void> {
  const courseId = randomUUID();
  await client.query("BEGIN");
  await client.query(`INSERT INTO "Course"("id","slug","title") VALUES ($1,$2,'Export benchmark')`, [courseId, BENCH.course]);
  await client.query(`
    INSERT INTO "User"("id","email","name")
    SELECT gen_random_uuid(), 'student' || i || '@bench.example.org',
           CASE WHEN i % 97 = 0 THEN '=Student, "' || i || '"' ELSE 'Student ' || lpad(i::text, 5, '0') END
    FROM generate_series(1, ${BENCH.students}) i`);
  await client.query(`INSERT INTO "Enrollment"("courseId","userId","role","updatedAt") SELECT $1, "id", 'student', now() FROM "User"`, [
    courseId,
  ]);
  for (let a = 0; a < BENCH.assignments; a++) {
    const setId = randomUUID();
    const revisionId = randomUUID();
    await client.query(`INSERT INTO "ProblemSet"("id","slug") VALUES ($1,$2)`, [setId, `bench-set-${a}`]);
    await client.query(
      `INSERT INTO "ProblemSetRevision"("id","problemSetId","revision","title","contentHash","source") VALUES ($1,$2,1,$3,'bench','bench')`,
      [revisionId, setId, `Bench set ${a}`],
    );
    await client.query(
      `INSERT INTO "Problem"("id","revisionId","slug","position","title","points","statement","graderType","graderConfig")
       SELECT gen_random_uuid(), $1, 'p' || i, i, 'Problem ' || i, 1 + i % 3, 'bench', CASE WHEN i % 2 = 1 THEN 'choice' ELSE 'numeric' END, '{}'
       FROM generate_series(1, ${BENCH.problemsPerAssignment}) i`,
      [revisionId],
    );
    // The second assignment is due 2026-11-01 and accepts late work for 3 days at 10 % a started day.
    const late = a === 1;
    await client.query(
      `INSERT INTO "Assignment"("id","courseId","problemSetId","revisionId","title","dueAt","lateUntil","latePenaltyPerDay")
       VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7)`,
      [
        courseId,
        setId,
        revisionId,
        `Homework ${a + 1}`,
        late ? "2026-11-01T00:00:00Z" : null,
        late ? "2026-11-04T00:00:00Z" : null,
        late ? 0.1 : 0,
      ],
    );
  }
  // Submissions: attempt 1 always, attempt 2 for about half the (student, problem) pairs; times spread over 3 days
  // around 2026-11-01 (the late assignment's due date), the second attempt 5 hours after the first.
  await client.query(`
    INSERT INTO "Submission"("id","assignmentId","userId","problemSlug","problemId","attempt","answer","seed","status","createdAt","gradedAt")
    SELECT gen_random_uuid(), a."id", e."userId", p."slug", p."id", n,
           CASE WHEN p."graderType" = 'choice' THEN jsonb_build_object('selected', jsonb_build_array(chr(97 + (h % 4)))) ELSE jsonb_build_object('value', h % 10) END,
           'bench', 'graded', ts, ts
    FROM "Enrollment" e
    JOIN "Assignment" a ON a."courseId" = e."courseId"
    JOIN "Problem" p ON p."revisionId" = a."revisionId"
    CROSS JOIN LATERAL (SELECT abs(hashtext(e."userId"::text || p."id"::text)) AS h) hh
    CROSS JOIN LATERAL generate_series(1, 1 + (h % 2)) n
    CROSS JOIN LATERAL (SELECT timestamp '2026-10-30' + ((h % 72) + (n - 1) * 5) * interval '1 hour' AS ts) t`);
  await client.query(`
    INSERT INTO "Grade"("id","submissionId","run","kind","status","score","rawScore","maxScore","feedback","problemId","graderType","graderVersion","durationMs")
    SELECT gen_random_uuid(), s."id", 1, 'auto', 'graded', r, r, p."points",
           CASE WHEN r < p."points" THEN '{"summary":"Incorrect.","tests":[{"name":"Answer","score":0,"maxScore":1,"status":"failed","message":"Not within tolerance of the expected value."}]}'::jsonb
                ELSE '{"summary":"Correct.","tests":[]}'::jsonb END,
           p."id", p."graderType", '1.0.0', 3
    FROM "Submission" s JOIN "Problem" p ON p."id" = s."problemId"
    CROSS JOIN LATERAL (SELECT (abs(hashtext(s."id"::text)) % (p."points"::int + 1))::float8 AS r) rr`);
  await client.query(`
    INSERT INTO "ScoreOverride"("id","submissionId","score","comment","createdAt")
    SELECT gen_random_uuid(), s."id", 1, 'Checked by hand, "fine"', s."createdAt" + interval '1 day'
    FROM "Submission" s WHERE abs(hashtext(s."id"::text)) % 50 = 0`);
  await client.query(`INSERT INTO "Setting"("key","value","updatedAt") VALUES ('bench.seed', to_jsonb($1::text), now())`, [SEED_VERSION]);
  await client.query("COMMIT");
  await client.query("ANALYZE");
}
