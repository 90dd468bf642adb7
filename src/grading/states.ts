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
function to(op: Transition, s: State) {
  if (!(TRANSITIONS[op].to as readonly State[]).includes(s)) throw new Error(`${op} cannot enter ${s}`);
  return status(s);
}
/** The claim's precondition, shared with claimableAt so both say the same thing. */
const CLAIMABLE = Prisma.sql`(
  (status = 'queued' AND ("availableAt" IS NULL OR "availableAt" <= ${NOW}))
  OR (status = 'running' AND ("leaseUntil" IS NULL OR "leaseUntil" < ${NOW})))`;

/** Takes the run if nobody holds a live lease on it; null otherwise (superseded, finished, held, backing off). */
export async function claim(db: Client, ref: RunRef, holder: string, leaseMs: number): Promise<Claimed | null> {
  const rows = await db.$queryRaw<({ claims: number; leaseUntil: Date } & ClaimedSubmission)[]>`
    UPDATE "Submission"
    SET status = ${to("claim", "running")}, "claimedBy" = ${holder}, "leaseUntil" = ${after(leaseMs)},
        "availableAt" = NULL, "statusAt" = ${NOW}, claims = claims + 1
    WHERE id = ${ref.submissionId}::uuid AND "gradingRun" = ${ref.run} AND ${from("claim")} AND ${CLAIMABLE}
    RETURNING claims, "leaseUntil", "assignmentId"::text, "userId"::text, "problemId"::text, answer, seed, "modelSha256", "lateFactor"`;
  const r = rows[0];
  if (!r) return null;
  const { claims, leaseUntil, ...submission } = r;
  return { ...ref, holder, claims, leaseUntil, submission };
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
  const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));
  const rows = await db.$queryRaw<{ id: string; lmsLinked: boolean }[]>`
    WITH done AS (
      UPDATE "Submission"
      SET status = ${to("finish", result.status)}, "gradedAt" = ${NOW}, "statusAt" = ${NOW}, "claimedBy" = NULL, "leaseUntil" = NULL,
          "lastError" = ${result.lastError?.slice(0, 2000) ?? null}, "lastErrorCode" = ${result.lastErrorCode}
      WHERE id = ${lease.submissionId}::uuid AND "gradingRun" = ${lease.run} AND ${from("finish")} AND "claimedBy" = ${lease.holder}
      RETURNING id)
    INSERT INTO "Grade" (id, "submissionId", run, status, score, "rawScore", "maxScore", feedback, "needsReview", "problemId",
                         "graderType", "graderVersion", "executionProvider", "ortVersion", "inputSeed", hashes, isolation, "durationMs", "createdAt")
    SELECT ${randomUUID()}::uuid, done.id, ${lease.run}, ${grade.status}::"GradeStatus", ${grade.score}, ${grade.rawScore}, ${grade.maxScore},
           ${json(grade.feedback)}::jsonb, ${grade.needsReview ?? false}, ${grade.problemId}::uuid, ${grade.graderType}, ${grade.graderVersion},
           ${grade.executionProvider ?? null}, ${grade.ortVersion ?? null}, ${grade.inputSeed ?? null}, ${json(grade.hashes)}::jsonb,
           ${json(grade.isolation)}::jsonb, ${Math.round(grade.durationMs)}, ${NOW}
    FROM done
    RETURNING id::text, EXISTS (SELECT 1 FROM "Submission" s JOIN "Assignment" a ON a.id = s."assignmentId"
      JOIN "LtiContext" c ON c."courseId" = a."courseId" WHERE s.id = "Grade"."submissionId") AS "lmsLinked"`;
  return rows[0] ? { lmsLinked: rows[0].lmsLinked } : null;
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
