import { randomUUID } from "node:crypto";
import pg from "pg";
import type { Assignment } from "../generated/prisma/client.ts";
import { BadRequestError } from "../errors.ts";
import { RAN_REJECTION_CODES, type AssignmentPolicy, type ExtensionFacts } from "./gradebook/policy.ts";

/**
 * The submit path's SQL, on a small pg pool of its own: the ORM's per-query interpretation was most of the API's
 * busy time under load (issue 12), and these two statements are all a JSON submission needs from Postgres —
 *   context(): the assignment, the caller's enrolment, extension and exam start, in one round trip;
 *   insert():  the attempt number, the attempt limit, the Idempotency-Key replay, the row and its audit event, in one
 *              round trip and one transaction, serialised per (assignment, user, problem) by an advisory lock, so
 *              concurrent submissions of one student queue behind each other instead of racing and retrying.
 * Times are read and written as UTC explicitly (Prisma's columns are `timestamp without time zone` holding UTC).
 */

export interface SubmitContext {
  assignment: Assignment;
  enrolledRole: "student" | "ta" | "instructor" | null;
  extension: ExtensionFacts | null;
  examStartedAt: Date | null;
}

const utc = (col: string, as = col.split(".").pop()!.replaceAll('"', "")) => `${col} AT TIME ZONE 'UTC' AS "${as}"`;

const CONTEXT_SQL = `SELECT a.id, a."courseId", a."problemSetId", a."revisionId", a.title,
  ${utc('a."opensAt"')}, ${utc('a."dueAt"')}, ${utc('a."lateUntil"')}, ${utc('a."createdAt"')},
  a."latePenaltyPerDay", a."lateSteps", a."maxAttempts", a."scorePolicy"::text AS "scorePolicy", a."timeLimitMinutes",
  a."countPrecheckRejections", a."countRunRejections", a."lmsAssignmentId", a."createdById",
  e.role::text AS "enrolledRole",
  x."userId" IS NOT NULL AS "hasExtension", ${utc('x."dueAt"', "extDueAt")}, ${utc('x."lateUntil"', "extLateUntil")},
  x."extraAttempts", x."extraMinutes", ${utc('s."startedAt"', "examStartedAt")}
FROM "Assignment" a
LEFT JOIN "Enrollment" e ON e."courseId" = a."courseId" AND e."userId" = $2
LEFT JOIN "Extension" x ON x."assignmentId" = a.id AND x."userId" = $2
LEFT JOIN "ExamStart" s ON s."assignmentId" = a.id AND s."userId" = $2
WHERE a.id = $1`;

export interface InsertArgs {
  assignmentId: string;
  userId: string;
  problemSlug: string;
  problemId: string;
  /** null: no limit (staff, or the assignment has none). */
  maxAttempts: number | null;
  rules: Pick<AssignmentPolicy, "countPrecheckRejections" | "countRunRejections">;
  answer: unknown;
  modelSha256?: string;
  blob?: { sha256: string; bytes: Uint8Array };
  seed: string;
  lateFactor: number;
  idempotencyKey?: string;
  requestHash: string;
}

export type InsertOutcome =
  | { kind: "new"; id: string; attempt: number }
  | { kind: "prior"; id: string; attempt: number; status: string; requestHash: string | null }
  | { kind: "full"; used: number };

const lit = (v: string | null | undefined) => (v === null || v === undefined ? "NULL" : pg.escapeLiteral(v));
const RAN = [...RAN_REJECTION_CODES].map((c) => lit(c)).join(", ");

/** policy.usesAttempt as SQL (never `failed`; rejections per the assignment's two settings), for the count under the lock. */
export function usesAttemptSql(p: InsertArgs["rules"]): string {
  const parts = [`status IN ('queued', 'running', 'graded')`];
  if (p.countRunRejections) parts.push(`(status = 'rejected' AND "lastErrorCode" IN (${RAN}))`);
  if (p.countPrecheckRejections) parts.push(`(status = 'rejected' AND ("lastErrorCode" IS NULL OR "lastErrorCode" NOT IN (${RAN})))`);
  return parts.join(" OR ");
}

/**
 * The insert as one simple-protocol query of two statements (one implicit transaction, one round trip): the lock,
 * then, with a snapshot taken after it was granted, the replay check, the count, the row and its audit event. Values
 * are literals escaped by pg (the simple protocol takes no parameters); every one is also validated before.
 */
function insertSql(a: InsertArgs, now: Date): string {
  const [A, U, S] = [lit(a.assignmentId), lit(a.userId), lit(a.problemSlug)];
  const at = `(${lit(now.toISOString())}::timestamptz AT TIME ZONE 'UTC')`;
  const mine = `"assignmentId" = ${A}::uuid AND "userId" = ${U}::uuid AND "problemSlug" = ${S}`;
  const prior = a.idempotencyKey
    ? `SELECT id, attempt, status::text AS status, "requestHash" FROM "Submission" WHERE ${mine} AND "idempotencyKey" = ${lit(a.idempotencyKey)}`
    : `SELECT NULL::uuid AS id, NULL::int AS attempt, NULL::text AS status, NULL::text AS "requestHash" WHERE false`;
  const answer = a.answer === undefined ? "NULL" : `${lit(JSON.stringify(a.answer))}::jsonb`;
  const limit = a.maxAttempts === null ? "" : `AND agg.used < ${Math.trunc(a.maxAttempts)}`;
  return `SELECT pg_advisory_xact_lock(hashtextextended(${lit(`submission-attempt:${a.assignmentId}:${a.userId}:${a.problemSlug}`)}, 0));
WITH prior AS (${prior}),
agg AS (SELECT coalesce(max(attempt), 0) + 1 AS next, count(*) FILTER (WHERE ${usesAttemptSql(a.rules)})::int AS used
  FROM "Submission" WHERE ${mine}),
ins AS (
  INSERT INTO "Submission" (id, "assignmentId", "userId", "problemSlug", "problemId", attempt, answer, "modelSha256", seed,
    "lateFactor", "idempotencyKey", "requestHash", status, "statusAt", "createdAt")
  SELECT ${lit(randomUUID())}::uuid, ${A}::uuid, ${U}::uuid, ${S}, ${lit(a.problemId)}::uuid, agg.next, ${answer},
    ${lit(a.modelSha256)}, ${lit(a.seed)}, ${Number(a.lateFactor)}::float8, ${lit(a.idempotencyKey)}, ${lit(a.requestHash)},
    'queued', ${at}, ${at}
  FROM agg WHERE NOT EXISTS (SELECT 1 FROM prior) ${limit}
  RETURNING id, attempt),
aud AS (
  INSERT INTO "AuditEvent" (id, "actorId", action, "entityType", "entityId", data, "createdAt")
  SELECT ${lit(randomUUID())}::uuid, ${U}::uuid, 'submission.create', 'submission', ins.id::text, jsonb_build_object('attempt', ins.attempt), ${at}
  FROM ins)
SELECT 'new' AS kind, id, attempt, 'queued' AS status, NULL AS "requestHash", NULL::int AS used FROM ins
UNION ALL SELECT 'prior', id, attempt, status, "requestHash", NULL FROM prior
UNION ALL SELECT 'full', NULL, NULL, NULL, NULL, used FROM agg WHERE NOT EXISTS (SELECT 1 FROM prior) AND NOT EXISTS (SELECT 1 FROM ins)`;
}

/** Postgres refused the answer's text (a NUL character in JSON, bytes that are not UTF-8): the client's input, a 400. */
const UNSTORABLE_TEXT = new Set(["22P05", "22021", "22P02"]);

export class IngestStore {
  private pool: pg.Pool | null = null;

  constructor(
    private readonly databaseUrl: string,
    private readonly poolMax = 10,
  ) {}

  /** Made on first use: a process that never takes a submission (a worker) opens no connection for it. */
  private get db(): pg.Pool {
    if (!this.pool) {
      this.pool = new pg.Pool({
        connectionString: this.databaseUrl,
        max: this.poolMax,
        connectionTimeoutMillis: 10_000,
        allowExitOnIdle: true,
      });
      this.pool.on("error", () => undefined); // an idle connection dropped by the server: the pool replaces it
    }
    return this.pool;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  /** One round trip: null when the assignment does not exist. */
  async context(assignmentId: string, userId: string): Promise<SubmitContext | null> {
    const { rows } = await this.db.query({ name: "ingest-context", text: CONTEXT_SQL, values: [assignmentId, userId] });
    const r = rows[0];
    if (!r) return null;
    const { enrolledRole, hasExtension, extDueAt, extLateUntil, extraAttempts, extraMinutes, examStartedAt, ...assignment } = r;
    return {
      assignment: assignment as Assignment,
      enrolledRole,
      extension: hasExtension ? { dueAt: extDueAt, lateUntil: extLateUntil, extraAttempts, extraMinutes } : null,
      examStartedAt,
    };
  }

  /** One round trip for a JSON answer; a model's blob goes first in the same transaction (BEGIN, blob, insert, COMMIT). */
  async insert(args: InsertArgs): Promise<InsertOutcome> {
    const sql = insertSql(args, new Date());
    try {
      const results = args.blob ? await this.withBlob(args.blob, sql) : await this.db.query(sql);
      const last = (Array.isArray(results) ? results.at(-1) : results) as pg.QueryResult;
      const row = last.rows[0];
      if (row.kind === "new") return { kind: "new", id: row.id, attempt: row.attempt };
      if (row.kind === "prior")
        return { kind: "prior", id: row.id, attempt: row.attempt, status: row.status, requestHash: row.requestHash };
      return { kind: "full", used: row.used };
    } catch (e) {
      if (e instanceof pg.DatabaseError && UNSTORABLE_TEXT.has(e.code ?? ""))
        throw new BadRequestError("INVALID_ANSWER", `This answer cannot be stored: ${e.message}.`);
      throw e;
    }
  }

  private async withBlob(blob: { sha256: string; bytes: Uint8Array }, sql: string) {
    const client = await this.db.connect();
    try {
      await client.query("BEGIN");
      await client.query(
        `INSERT INTO "Blob" (sha256, size, data, "createdAt") VALUES ($1, $2, $3, now() AT TIME ZONE 'UTC') ON CONFLICT (sha256) DO NOTHING`,
        [blob.sha256, blob.bytes.byteLength, Buffer.from(blob.bytes.buffer, blob.bytes.byteOffset, blob.bytes.byteLength)],
      );
      const results = await client.query(sql);
      await client.query("COMMIT");
      client.release();
      return results;
    } catch (e) {
      // A connection that cannot even roll back is broken: dropped from the pool instead of reused.
      const broken = await client.query("ROLLBACK").then(
        () => false,
        () => true,
      );
      client.release(broken);
      throw e;
    }
  }
}
