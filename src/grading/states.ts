import { randomUUID } from "node:crypto";
import { Prisma, type Db } from "../db.ts";

/**
 * The one owner of Submission.status. Every write of status (and of the lease that guards it) is here,
 * as one conditional UPDATE whose WHERE clause is the transition's precondition: two processes racing
 * for the same transition cannot both pass it, so no caller needs a lock.
 *
 * A run is one grading of one submission (gradingRun). A worker holds a run by its lease: `claimedBy`
 * (a token unique to that attempt) and `leaseUntil` (renewed while it grades). Only the holder of the
 * current run's lease may finish or release it; a regrade (supersede) starts a new run, so an older
 * run's holder can never finish again. Times are the database's clock (UTC), so workers on hosts
 * with skewed clocks still agree on whether a lease has passed.
 */

export const STATES = ["queued", "running", "graded", "rejected", "failed"] as const;
export type State = (typeof STATES)[number];
export type Outcome = "graded" | "rejected" | "failed";

/** The transitions, as data: which states each operation may leave and which it enters. */
export const TRANSITIONS = {
  /** A worker takes a run: queued (once available), or running whose lease has passed (its holder died). */
  claim: { from: ["queued", "running"], to: ["running"] },
  /** The holder extends its lease while it grades. */
  renew: { from: ["running"], to: ["running"] },
  /** The holder writes the run's grade and its outcome, once. */
  finish: { from: ["running"], to: ["graded", "rejected", "failed"] },
  /** Infrastructure error: back to the queue, not claimable before the backoff has passed. */
  release: { from: ["running"], to: ["queued"] },
  /** A regrade: a new run from any state; the old run's lease is void. */
  supersede: { from: ["queued", "running", "graded", "rejected", "failed"], to: ["queued"] },
  /** Giving up (retries or claims exhausted): visible to staff as failed, never left running. */
  fail: { from: ["queued", "running"], to: ["failed"] },
} as const satisfies Record<string, { from: readonly State[]; to: readonly State[] }>;
export type Transition = keyof typeof TRANSITIONS;

export function allowed(op: Transition, from: State, to: State): boolean {
  const t: { from: readonly State[]; to: readonly State[] } = TRANSITIONS[op];
  return t.from.includes(from) && t.to.includes(to);
}

/** Terminal states leave only by supersede (a regrade). */
export const isTerminal = (s: State): boolean =>
  Object.entries(TRANSITIONS).every(([op, t]) => op === "supersede" || !(t.from as readonly State[]).includes(s));

type Client = Db | Prisma.TransactionClient;
export interface RunRef {
  submissionId: string;
  run: number;
}
export interface Lease extends RunRef {
  /** The token of this claim: unique per attempt, so a re-claim by the same process is a different lease. */
  holder: string;
}
export interface Claimed extends Lease {
  claims: number;
  leaseUntil: Date;
  /** What grading the run reads, returned by the claim itself so that a grading costs no second read of the row. */
  submission: ClaimedSubmission;
}
export interface ClaimedSubmission {
  assignmentId: string;
  userId: string;
  problemId: string;
  answer: unknown;
  seed: string;
  modelSha256: string | null;
  lateFactor: number;
}

const NOW = Prisma.sql`(now() AT TIME ZONE 'UTC')`;
const after = (ms: number) => Prisma.sql`(${NOW} + ${Math.round(ms)}::int * interval '1 millisecond')`;
const status = (s: State) => Prisma.sql`${s}::"SubmissionStatus"`;
/** The table above, applied: a transition's UPDATE matches only rows in the states it may leave. */
const from = (op: Transition) => Prisma.sql`status IN (${Prisma.join(TRANSITIONS[op].from.map(status))})`;
function enters<S extends State>(op: Transition, s: S): S {
  if (!(TRANSITIONS[op].to as readonly State[]).includes(s)) throw new Error(`${op} cannot enter ${s}`);
  return s;
}
const to = (op: Transition, s: State) => status(enters(op, s));
/** The claim's precondition, shared with claimableAt so both say the same thing. */
const CLAIMABLE = Prisma.sql`(
  (status = 'queued' AND ("availableAt" IS NULL OR "availableAt" <= ${NOW}))
  OR (status = 'running' AND ("leaseUntil" IS NULL OR "leaseUntil" < ${NOW})))`;

/**
 * The batch's ids as an array the planner sees: joined to a json recordset alone (estimated at 100 rows), it would
 * scan every queued row for each batch, growing with the backlog; by primary key it reads only the batch's rows.
 */
const byIds = (ids: string[]) => Prisma.sql`string_to_array(${ids.join(",")}, ',')::uuid[]`;

/** Takes the run if nobody holds a live lease on it; null otherwise (superseded, finished, held, backing off). */
export async function claim(db: Client, ref: RunRef, holder: string, leaseMs: number): Promise<Claimed | null> {
  return (await claimMany(db, [{ ...ref, holder, leaseMs }]))[0]!;
}

export interface ClaimRequest extends Lease {
  leaseMs: number;
}

/** claim() of several runs in one statement (one round trip, one commit); answers in the order asked. */
export async function claimMany(db: Client, asked: ClaimRequest[]): Promise<(Claimed | null)[]> {
  const rows = await db.$queryRaw<({ id: string; claimedBy: string; claims: number; leaseUntil: Date } & ClaimedSubmission)[]>`
    UPDATE "Submission" AS s
    SET status = ${to("claim", "running")}, "claimedBy" = j.holder, "leaseUntil" = ${NOW} + j."leaseMs" * interval '1 millisecond',
        "availableAt" = NULL, "statusAt" = ${NOW}, claims = s.claims + 1
    FROM jsonb_to_recordset(${JSON.stringify(asked.map((a) => ({ id: a.submissionId, run: a.run, holder: a.holder, leaseMs: Math.round(a.leaseMs) })))}::jsonb)
      AS j(id uuid, run int, holder text, "leaseMs" int)
    WHERE s.id = j.id AND s.id = ANY(${byIds(asked.map((a) => a.submissionId))}) AND s."gradingRun" = j.run AND ${from("claim")} AND ${CLAIMABLE}
    RETURNING s.id::text, s."claimedBy", s.claims, s."leaseUntil", s."assignmentId"::text, s."userId"::text, s."problemId"::text,
              s.answer, s.seed, s."modelSha256", s."lateFactor"`;
  // The same run asked twice in one batch is taken by one of the two, as it would be by two statements.
  return asked.map((a) => {
    const r = rows.find((x) => x.id === a.submissionId && x.claimedBy === a.holder);
    if (!r) return null;
    const { id: _id, claimedBy: _by, claims, leaseUntil, ...submission } = r;
    return { submissionId: a.submissionId, run: a.run, holder: a.holder, claims, leaseUntil, submission };
  });
}

/** Extends the holder's lease; false once it is lost (taken over after expiry, superseded, released). */
export async function renew(db: Client, lease: Lease, leaseMs: number): Promise<boolean> {
  const n = await db.$executeRaw`
    UPDATE "Submission" SET "leaseUntil" = ${after(leaseMs)}
    WHERE id = ${lease.submissionId}::uuid AND "gradingRun" = ${lease.run} AND ${from("renew")} AND "claimedBy" = ${lease.holder}`;
  return n === 1;
}

export interface Finish {
  status: Outcome;
  lastError: string | null;
  lastErrorCode: string | null;
}
/** An automatic grade's columns (kind `auto`; staff grades are written elsewhere). */
export interface GradeData {
  status: "graded" | "rejected" | "error";
  score: number;
  rawScore: number;
  maxScore: number;
  feedback: unknown;
  needsReview?: boolean;
  problemId: string;
  graderType: string;
  graderVersion: string;
  executionProvider?: string | null;
  ortVersion?: string | null;
  inputSeed?: string | null;
  hashes?: unknown;
  isolation?: unknown;
  durationMs: number;
}

/**
 * The run's end: its outcome and its Grade in one statement (so one round trip, and atomic as any statement is),
 * by the lease holder of the current run only: the INSERT reads the UPDATE's row, so no Grade is written when the
 * UPDATE matched nothing. Null (and nothing written) when the lease was lost: a late finish of a superseded or
 * taken-over run. A Grade of this run already present fails the whole statement (unique violation), status too.
 * Also says whether the course is linked to an LMS (any LTI context), so grading looks up passbacks only then.
 */
export async function finish(db: Client, lease: Lease, result: Finish, grade: GradeData): Promise<{ lmsLinked: boolean } | null> {
  return (await finishMany(db, [{ lease, result, grade }]))[0]!;
}

export interface FinishRequest {
  lease: Lease;
  result: Finish;
  grade: GradeData;
}

/** finish() of several runs in one statement (one round trip, one commit); answers in the order asked. */
export async function finishMany(db: Client, asked: FinishRequest[]): Promise<({ lmsLinked: boolean } | null)[]> {
  const runs = asked.map(({ lease, result, grade: g }) => ({
    id: lease.submissionId,
    run: lease.run,
    holder: lease.holder,
    outcome: enters("finish", result.status),
    lastError: result.lastError?.slice(0, 2000) ?? null,
    lastErrorCode: result.lastErrorCode,
    gradeId: randomUUID(),
    ...{ gradeStatus: g.status, score: g.score, rawScore: g.rawScore, maxScore: g.maxScore, feedback: g.feedback ?? null },
    ...{ needsReview: g.needsReview ?? false, problemId: g.problemId, graderType: g.graderType, graderVersion: g.graderVersion },
    ...{ executionProvider: g.executionProvider ?? null, ortVersion: g.ortVersion ?? null, inputSeed: g.inputSeed ?? null },
    ...{ hashes: g.hashes ?? null, isolation: g.isolation ?? null, durationMs: Math.round(g.durationMs) },
  }));
  const rows = await db.$queryRaw<{ id: string; lmsLinked: boolean }[]>`
    WITH j AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(runs)}::jsonb) AS x(
        id uuid, run int, holder text, outcome text, "lastError" text, "lastErrorCode" text, "gradeId" uuid, "gradeStatus" text,
        score float8, "rawScore" float8, "maxScore" float8, feedback jsonb, "needsReview" boolean, "problemId" uuid,
        "graderType" text, "graderVersion" text, "executionProvider" text, "ortVersion" text, "inputSeed" text,
        hashes jsonb, isolation jsonb, "durationMs" int)),
    done AS (
      UPDATE "Submission" AS s
      SET status = j.outcome::"SubmissionStatus", "gradedAt" = ${NOW}, "statusAt" = ${NOW}, "claimedBy" = NULL, "leaseUntil" = NULL,
          "lastError" = j."lastError", "lastErrorCode" = j."lastErrorCode"
      FROM j
      WHERE s.id = j.id AND s.id = ANY(${byIds(runs.map((r) => r.id))}) AND s."gradingRun" = j.run AND ${from("finish")}
        AND s."claimedBy" = j.holder
      RETURNING s.id, j.holder)
    INSERT INTO "Grade" (id, "submissionId", run, status, score, "rawScore", "maxScore", feedback, "needsReview", "problemId",
                         "graderType", "graderVersion", "executionProvider", "ortVersion", "inputSeed", hashes, isolation, "durationMs", "createdAt")
    SELECT j."gradeId", j.id, j.run, j."gradeStatus"::"GradeStatus", j.score, j."rawScore", j."maxScore", j.feedback, j."needsReview",
           j."problemId", j."graderType", j."graderVersion", j."executionProvider", j."ortVersion", j."inputSeed", j.hashes,
           j.isolation, j."durationMs", ${NOW}
    FROM j JOIN done ON done.id = j.id AND done.holder = j.holder
    RETURNING id::text, EXISTS (SELECT 1 FROM "Submission" s JOIN "Assignment" a ON a.id = s."assignmentId"
      JOIN "LtiContext" c ON c."courseId" = a."courseId" WHERE s.id = "Grade"."submissionId") AS "lmsLinked"`;
  return runs.map((r) => {
    const row = rows.find((x) => x.id === r.gradeId);
    return row ? { lmsLinked: row.lmsLinked } : null;
  });
}

/**
 * Back to the queue after an infrastructure error, not claimable for backoffMs. `holder` null releases
 * only a lease that has already passed (a worker found dead by BullMQ's stalled check): never a live one.
 */
export async function release(db: Client, ref: RunRef, holder: string | null, reason: string, backoffMs: number): Promise<boolean> {
  const n = await db.$executeRaw`
    UPDATE "Submission"
    SET status = ${to("release", "queued")}, "claimedBy" = NULL, "leaseUntil" = NULL, "availableAt" = ${after(Math.max(0, backoffMs))},
        "statusAt" = ${NOW}, "lastError" = ${reason.slice(0, 2000)}
    WHERE id = ${ref.submissionId}::uuid AND "gradingRun" = ${ref.run} AND ${from("release")}
      AND ${holder === null ? Prisma.sql`("leaseUntil" IS NULL OR "leaseUntil" < ${NOW})` : Prisma.sql`"claimedBy" = ${holder}`}`;
  return n === 1;
}

/**
 * A regrade: a new run, queued, with its claim count reset. The old run's lease is void (its holder's
 * renew, finish and release all fail from now on), so a late result of it can never become current.
 */
export async function supersede(db: Client, submissionId: string, problemId?: string): Promise<{ run: number; status: State } | null> {
  const rows = await db.$queryRaw<{ run: number; status: State }[]>`
    UPDATE "Submission"
    SET status = ${to("supersede", "queued")}, "gradingRun" = "gradingRun" + 1, claims = 0, "claimedBy" = NULL, "leaseUntil" = NULL,
        "availableAt" = NULL, "statusAt" = ${NOW}, "lastError" = NULL, "lastErrorCode" = NULL
        ${problemId ? Prisma.sql`, "problemId" = ${problemId}::uuid` : Prisma.empty}
    WHERE id = ${submissionId}::uuid AND ${from("supersede")}
    RETURNING "gradingRun" AS run, status::text AS status`;
  return rows[0] ?? null;
}

/** Gives the run up as failed. With a holder, only that lease holder may; without, any unfinished current run. */
export async function fail(db: Client, ref: RunRef, holder: string | null, reason: string, code: string): Promise<boolean> {
  const n = await db.$executeRaw`
    UPDATE "Submission"
    SET status = ${to("fail", "failed")}, "claimedBy" = NULL, "leaseUntil" = NULL, "statusAt" = ${NOW},
        "lastError" = ${reason.slice(0, 2000)}, "lastErrorCode" = ${code}
    WHERE id = ${ref.submissionId}::uuid AND "gradingRun" = ${ref.run} AND ${from("fail")}
      ${holder === null ? Prisma.empty : Prisma.sql`AND "claimedBy" = ${holder}`}`;
  return n === 1;
}

/**
 * When the run becomes claimable (now, or when its lease or backoff passes); null when it never will
 * (finished or superseded), so a job holding it can be dropped rather than retried.
 */
export async function claimableAt(db: Client, ref: RunRef): Promise<Date | null> {
  const rows = await db.$queryRaw<{ at: Date }[]>`
    SELECT CASE WHEN ${CLAIMABLE} THEN ${NOW}
                WHEN status = 'running' THEN "leaseUntil"
                ELSE "availableAt" END AS at
    FROM "Submission"
    WHERE id = ${ref.submissionId}::uuid AND "gradingRun" = ${ref.run} AND ${from("claim")}`;
  return rows[0]?.at ?? null;
}

/**
 * Unfinished runs whose job Redis may have lost: queued (available, and older than graceMs, so a fresh
 * submission's own enqueue is not raced) or running past its lease. Oldest first.
 */
export async function recoverable(db: Client, graceMs: number, limit: number): Promise<Recoverable[]> {
  return db.$queryRaw`
    SELECT id::text AS "submissionId", "gradingRun" AS run, "statusAt"::text AS "statusAt"
    FROM "Submission"
    WHERE (status = 'queued' AND ("availableAt" IS NULL OR "availableAt" <= ${NOW}) AND "statusAt" < ${after(-graceMs)})
       OR (status = 'running' AND ("leaseUntil" IS NULL OR "leaseUntil" < ${NOW}))
    ORDER BY "statusAt" ASC
    LIMIT ${limit}`;
}

/** statusAt as the database's exact text, so the compare-and-set compares what was read, not a rounded Date. */
export type Recoverable = RunRef & { statusAt: string };

/** Compare-and-set on statusAt: of several outbox loops that saw the same row, one takes it to enqueue. */
export async function takeForRecovery(db: Client, ref: Recoverable): Promise<boolean> {
  const n = await db.$executeRaw`
    UPDATE "Submission" SET "statusAt" = ${NOW}
    WHERE id = ${ref.submissionId}::uuid AND "gradingRun" = ${ref.run} AND "statusAt" = ${ref.statusAt}::timestamp`;
  return n === 1;
}
