import { randomUUID } from "node:crypto";
import { LRUCache } from "lru-cache";
import pg from "pg";
import { Coalescer } from "../lib/coalescer.ts";
import { resilientPool } from "../lib/pg-pool.ts";
import type { Assignment } from "../generated/prisma/client.ts";
import { BadRequestError } from "../errors.ts";
import { RAN_REJECTION_CODES, type AssignmentPolicy, type ExtensionFacts } from "./gradebook/policy.ts";

/**
 * The submit path's SQL, on a small pg pool of its own: the ORM's per-query interpretation was most of the API's
 * busy time under load (issue 12), and these two statements are all a JSON submission needs from Postgres —
 *   context(): the assignment, the caller's enrolment, extension and exam start, in one round trip, with a
 *              fingerprint (md5 of the row), and kept per (assignment, user) for the caller's next submission;
 *   insert():  the attempt number, the attempt limit, the Idempotency-Key replay, the row and its audit event, in one
 *              round trip and one transaction, serialised per (assignment, user, problem) by an advisory lock, so
 *              concurrent submissions of one student queue behind each other instead of racing and retrying. It
 *              recomputes the context's fingerprint under the lock and inserts nothing if it differs from the one
 *              the submission was decided on (`stale`), so a kept context saves a round trip and is never acted on
 *              once a PATCH, an extension, an enrolment change or an exam start has made it wrong.
 * Times are read and written as UTC explicitly (Prisma's columns are `timestamp without time zone` holding UTC).
 */

export interface SubmitContext {
  assignment: Assignment;
  enrolledRole: "student" | "ta" | "instructor" | null;
  extension: ExtensionFacts | null;
  examStartedAt: Date | null;
  /** md5 of the context row as Postgres prints it: the insert checks it is still the same. */
  fingerprint: string;
}

const utc = (col: string, as = col.split(".").pop()!.replaceAll('"', "")) => `${col} AT TIME ZONE 'UTC' AS "${as}"`;

const CONTEXT_ROW = `SELECT a.id, a."courseId", a."problemSetId", a."revisionId", a.title,
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
const CONTEXT_SQL = `SELECT c.*, md5(c::text) AS fingerprint FROM (${CONTEXT_ROW}) c`;

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
  /** The context this submission was decided on (null: do not check). */
  fingerprint: string | null;
}

export type InsertOutcome =
  | { kind: "new"; id: string; attempt: number }
  | { kind: "prior"; id: string; attempt: number; status: string; requestHash: string | null }
  | { kind: "full"; used: number }
  | { kind: "stale" };

const lit = (v: string | null | undefined) => (v === null || v === undefined ? "NULL" : pg.escapeLiteral(v));
const RAN = [...RAN_REJECTION_CODES].map((c) => lit(c)).join(", ");

/**
 * The insert, prepared once per connection (parsed and planned once, not per submission): the replay check, the
 * count of attempts used (policy.usesAttempt: never `failed`; rejections per the assignment's two settings, $13 and
 * $14), the row and its audit event. $12 null: no attempt limit. $17: the context's fingerprint (null: unchecked).
 * An Idempotency-Key replay answers whatever the context: the request was decided when it was first taken.
 * The next attempt is one read at the end of the (assignment, user, problem, attempt) index, and attempts are counted
 * only under a limit (a subquery in an untaken CASE branch is never run): the count reads every earlier row of the
 * student, so without a limit a submission's cost would grow with the attempts before it (0.9 ms at 126, not 0.1).
 */
export const PREPARE_INSERT = `PREPARE ingest_insert(uuid, uuid, text, uuid, jsonb, text, text, float8, text, text, timestamp, int, bool, bool, uuid, uuid, text) AS
WITH current AS (
  SELECT coalesce($17 IS NULL OR $17 = (SELECT md5(c::text) FROM (${CONTEXT_ROW}) c), false) AS ok),
prior AS (
  SELECT id, attempt, status::text AS status, "requestHash" FROM "Submission"
  WHERE "assignmentId" = $1 AND "userId" = $2 AND "problemSlug" = $3 AND "idempotencyKey" = $9),
agg AS (
  SELECT coalesce((SELECT attempt FROM "Submission" WHERE "assignmentId" = $1 AND "userId" = $2 AND "problemSlug" = $3
      ORDER BY attempt DESC LIMIT 1), 0) + 1 AS next,
    CASE WHEN $12::int IS NULL THEN 0 ELSE (SELECT count(*) FILTER (WHERE status IN ('queued', 'running', 'graded')
      OR ($13 AND status = 'rejected' AND "lastErrorCode" IN (${RAN}))
      OR ($14 AND status = 'rejected' AND ("lastErrorCode" IS NULL OR "lastErrorCode" NOT IN (${RAN}))))
      FROM "Submission" WHERE "assignmentId" = $1 AND "userId" = $2 AND "problemSlug" = $3)::int END AS used),
ins AS (
  INSERT INTO "Submission" (id, "assignmentId", "userId", "problemSlug", "problemId", attempt, answer, "modelSha256", seed,
    "lateFactor", "idempotencyKey", "requestHash", status, "statusAt", "createdAt")
  SELECT $15, $1, $2, $3, $4, agg.next, $5, $6, $7, $8, $9, $10, 'queued', $11, $11
  FROM agg WHERE NOT EXISTS (SELECT 1 FROM prior) AND (SELECT ok FROM current) AND ($12::int IS NULL OR agg.used < $12)
  RETURNING id, attempt),
aud AS (
  INSERT INTO "AuditEvent" (id, "actorId", action, "entityType", "entityId", data, "createdAt")
  SELECT $16, $2, 'submission.create', 'submission', ins.id::text, jsonb_build_object('attempt', ins.attempt), $11 FROM ins)
SELECT 'new' AS kind, id, attempt, 'queued' AS status, NULL AS "requestHash", NULL::int AS used FROM ins
UNION ALL SELECT 'prior', id, attempt, status, "requestHash", NULL FROM prior
UNION ALL SELECT 'stale', NULL, NULL, NULL, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM prior) AND NOT (SELECT ok FROM current)
UNION ALL SELECT 'full', NULL, NULL, NULL, NULL, used FROM agg
  WHERE NOT EXISTS (SELECT 1 FROM prior) AND (SELECT ok FROM current) AND NOT EXISTS (SELECT 1 FROM ins)`;

/**
 * One simple-protocol query (one implicit transaction, one round trip) for one or several submissions: the locks,
 * then, each with a snapshot taken after all were granted, the prepared inserts. Locks are taken in sorted order, so
 * two batches that share students cannot deadlock; two submissions of one student in one batch run in order, the
 * second seeing the first's row as it would after its commit. The simple protocol takes no parameters, so the values
 * are literals escaped by pg (every one is also validated before).
 */
function insertSql(batch: InsertArgs[], now: Date): string {
  const locks = [...new Set(batch.map((a) => `submission-attempt:${a.assignmentId}:${a.userId}:${a.problemSlug}`))].sort();
  const lockSql = locks.map((k) => `SELECT pg_advisory_xact_lock(hashtextextended(${lit(k)}, 0))`);
  return [...lockSql, ...batch.map((a) => executeSql(a, now))].join("; ");
}

/** Exported with PREPARE_INSERT for tests/ingest.test.ts, which checks what the statement reads (EXPLAIN ANALYZE). */
export function executeSql(a: InsertArgs, now: Date): string {
  const values = [
    lit(a.assignmentId),
    lit(a.userId),
    lit(a.problemSlug),
    lit(a.problemId),
    a.answer === undefined ? "NULL" : lit(JSON.stringify(a.answer)),
    lit(a.modelSha256),
    lit(a.seed),
    String(Number(a.lateFactor)),
    lit(a.idempotencyKey),
    lit(a.requestHash),
    `(${lit(now.toISOString())}::timestamptz AT TIME ZONE 'UTC')`,
    a.maxAttempts === null ? "NULL" : String(Math.trunc(a.maxAttempts)),
    String(a.rules.countRunRejections),
    String(a.rules.countPrecheckRejections),
    lit(randomUUID()),
    lit(randomUUID()),
    lit(a.fingerprint),
  ];
  return `EXECUTE ingest_insert(${values.join(", ")})`;
}

function outcomeOf(row: Record<string, any>): InsertOutcome {
  if (row.kind === "new") return { kind: "new", id: row.id, attempt: row.attempt };
  if (row.kind === "stale") return { kind: "stale" };
  if (row.kind === "prior") return { kind: "prior", id: row.id, attempt: row.attempt, status: row.status, requestHash: row.requestHash };
  return { kind: "full", used: row.used };
}

/** Postgres refused the answer's text (a NUL character in JSON, bytes that are not UTF-8): the client's input, a 400. */
const UNSTORABLE_TEXT = new Set(["22P05", "22021", "22P02"]);

const lastResult = (results: pg.QueryResult | pg.QueryResult[]) => (Array.isArray(results) ? results.at(-1)! : results);

export class IngestStore {
  private pool: pg.Pool | null = null;

  constructor(
    private readonly databaseUrl: string,
    batchMax = 32,
    private readonly poolMax = 10,
  ) {
    this.batches = new Coalescer<InsertArgs, InsertOutcome>(
      (batch) => this.insertBatch(batch),
      (one) => this.insertBatch([one]).then(([o]) => o!),
      { maxBatch: batchMax, maxInFlight: batchMax > 1 ? 4 : poolMax },
    );
  }

  /** Made on first use: a process that never takes a submission (a worker) opens no connection for it. */
  private get db(): pg.Pool {
    if (!this.pool) {
      this.pool = resilientPool({
        connectionString: this.databaseUrl,
        max: this.poolMax,
        connectionTimeoutMillis: 10_000,
        allowExitOnIdle: true,
      });
    }
    return this.pool;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  /** One round trip: null when the assignment does not exist. Kept for the caller's next submission. */
  async context(assignmentId: string, userId: string): Promise<SubmitContext | null> {
    const { rows } = await this.db.query({ name: "ingest-context", text: CONTEXT_SQL, values: [assignmentId, userId] });
    const r = rows[0];
    if (!r) return null;
    const { enrolledRole, hasExtension, extDueAt, extLateUntil, extraAttempts, extraMinutes, examStartedAt, fingerprint, ...assignment } =
      r;
    const ctx: SubmitContext = {
      assignment: assignment as Assignment,
      enrolledRole,
      extension: hasExtension ? { dueAt: extDueAt, lateUntil: extLateUntil, extraAttempts, extraMinutes } : null,
      examStartedAt,
      fingerprint,
    };
    this.kept.set(`${assignmentId}:${userId}`, ctx);
    return ctx;
  }

  /** The context last read for this caller, if this process still has it: it may be stale, the insert will say. */
  keptContext(assignmentId: string, userId: string): SubmitContext | undefined {
    return this.kept.get(`${assignmentId}:${userId}`);
  }

  forget(assignmentId: string, userId: string): void {
    this.kept.delete(`${assignmentId}:${userId}`);
  }

  /** About 1 KB each; a course's active students fit, the rest read their context again. */
  private readonly kept = new LRUCache<string, SubmitContext>({ max: 10_000 });

  /**
   * One round trip for a JSON answer, shared with the JSON answers that arrive meanwhile (Coalescer: under load one
   * statement and one commit carry many, which is most of what a submission costs Postgres and the API); a model's
   * blob goes first in a transaction of its own (BEGIN, blob, insert, COMMIT).
   */
  async insert(args: InsertArgs): Promise<InsertOutcome> {
    try {
      if (!args.blob) return await this.batches.run(args);
      const blob = args.blob;
      return await this.withClient(async (client) =>
        outcomeOf(lastResult(await this.withBlob(client, blob, insertSql([args], new Date()))).rows[0]),
      );
    } catch (e) {
      if (e instanceof pg.DatabaseError && UNSTORABLE_TEXT.has(e.code ?? ""))
        throw new BadRequestError("INVALID_ANSWER", `This answer cannot be stored: ${e.message}.`);
      throw e;
    }
  }

  private readonly batches: Coalescer<InsertArgs, InsertOutcome>;

  private async insertBatch(batch: InsertArgs[]): Promise<InsertOutcome[]> {
    const results = await this.withClient((client) => client.query(insertSql(batch, new Date())));
    const all = (Array.isArray(results) ? results : [results]) as pg.QueryResult[];
    return all.slice(-batch.length).map((r) => outcomeOf(r.rows[0]));
  }

  /** A pooled connection with the insert prepared on it (once per connection); one that failed is not reused. */
  private async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.db.connect();
    let broken = false;
    try {
      if (!this.prepared.has(client)) {
        await client.query(PREPARE_INSERT);
        this.prepared.add(client);
      }
      return await fn(client);
    } catch (e) {
      // An error of the query leaves the connection usable; one of the connection (or a ROLLBACK that failed) does not.
      broken = !(e instanceof pg.DatabaseError) || e.severity === "FATAL" || e.severity === "PANIC";
      throw e;
    } finally {
      client.release(broken);
    }
  }

  private readonly prepared = new WeakSet<pg.PoolClient>();

  /** A model's blob and its submission in one transaction: BEGIN, blob, the lock and insert, COMMIT. */
  private async withBlob(client: pg.PoolClient, blob: { sha256: string; bytes: Uint8Array }, sql: string) {
    try {
      await client.query("BEGIN");
      await client.query(
        `INSERT INTO "Blob" (sha256, size, data, "createdAt") VALUES ($1, $2, $3, now() AT TIME ZONE 'UTC') ON CONFLICT (sha256) DO NOTHING`,
        [blob.sha256, blob.bytes.byteLength, Buffer.from(blob.bytes.buffer, blob.bytes.byteOffset, blob.bytes.byteLength)],
      );
      const results = await client.query(sql);
      await client.query("COMMIT");
      return results;
    } catch (e) {
      await client.query("ROLLBACK");
      throw e;
    }
  }
}
