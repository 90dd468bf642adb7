import type pg from "pg";
import type { Sent, StreamFigures } from "./load.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PENDING = `status IN ('queued', 'running')`;

/** Times from each fault until the system is whole again: the API ready and every answer accepted before it graded. */
export class Recovery {
  private readonly waits: Promise<number>[] = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly baseUrl: string,
    private readonly timeoutMs = 120_000, // within the test's 240 s, so a test that never recovers still reports why
  ) {}

  mark(sent: Sent[]): void {
    const ids = sent.flatMap((s) => (s.id ? [s.id] : []));
    const t0 = Date.now();
    this.waits.push(this.until(ids).then(() => Date.now() - t0));
  }

  private async until(ids: string[]) {
    const deadline = Date.now() + this.timeoutMs;
    let last = "nothing checked yet";
    for (; Date.now() < deadline; await sleep(250)) {
      try {
        const ready = await fetch(`${this.baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
        if (ready.status !== 200) {
          last = `/readyz ${ready.status} ${await ready.text()}`;
          continue;
        }
        const { rows } = await this.pool.query(
          `SELECT status, count(*)::int AS n FROM "Submission" WHERE id = ANY($1::uuid[]) AND ${PENDING} GROUP BY status`,
          [ids],
        );
        if (rows.length === 0) return;
        last = `of ${ids.length} answers, still ${rows.map((r) => `${r.n} ${r.status}`).join(", ")}`;
      } catch (e) {
        last = `${(e as Error).message}`; // the API or Postgres is still down: that is what is being timed
      }
    }
    // What was still missing says which part did not come back.
    throw new Error(`not recovered within ${this.timeoutMs} ms: ${last}`);
  }

  /** Each fault's recovery (ms), NaN for one that never recovered. */
  all(): Promise<number[]> {
    return Promise.all(
      this.waits.map((w) =>
        w.catch((e: Error) => {
          console.log(`[faults] ${e.message}`);
          return NaN;
        }),
      ),
    );
  }
}

/** Waits until no submission of the assignment is queued or running (or the deadline passes). */
export async function settle(pool: pg.Pool, assignmentId: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { rows } = await pool
      .query(`SELECT count(*)::int AS n FROM "Submission" WHERE "assignmentId" = $1 AND ${PENDING}`, [assignmentId])
      .catch(() => ({ rows: [{ n: -1 }] }));
    if (rows[0].n === 0) return;
    await sleep(250);
  }
}

export interface Figures extends StreamFigures {
  graded: number;
  lost: number;
  duplicated: number;
  wrong: number;
  /** Still queued/running at the end, and of those, running past their lease. */
  pending: number;
  stuck: number;
  /** Submissions claimed more than once: runs a worker took over after another died, paused or lost its job. */
  retaken: number;
  /** The slowest recovery of the test's faults, and each one. */
  recoverMs: number;
  recoveries: number[];
}

interface Row {
  id: string;
  status: string;
  key: string | null;
  claims: number;
  grades: number;
  current: number[] | null;
  pastLease: boolean;
}

/**
 * What Postgres holds for the assignment against what the clients saw: each accepted answer exactly once,
 * with exactly one grade of its run carrying the score the answer deserves, and nothing left in flight.
 */
export async function audit(
  pool: pg.Pool,
  assignmentId: string,
  sent: Sent[],
  stream: StreamFigures,
  recoveries: number[],
): Promise<Figures> {
  const { rows } = await pool.query<Row>(
    `SELECT s.id, s.status, s."idempotencyKey" AS key,
            s.claims, (SELECT count(*)::int FROM "Grade" g WHERE g."submissionId" = s.id AND g.kind = 'auto') AS grades,
            (SELECT array_agg(g.score) FROM "Grade" g WHERE g."submissionId" = s.id AND g.run = s."gradingRun") AS current,
            (s.status = 'running' AND (s."leaseUntil" IS NULL OR s."leaseUntil" < (now() AT TIME ZONE 'UTC'))) AS "pastLease"
       FROM "Submission" s WHERE s."assignmentId" = $1`,
    [assignmentId],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  const accepted = sent.filter((s) => s.id);
  const acceptedIds = new Set(accepted.map((s) => s.id));
  let lost = 0;
  let wrong = 0;
  let graded = 0;
  for (const s of accepted) {
    const r = byId.get(s.id!);
    if (!r || r.status !== "graded") {
      lost++;
      continue;
    }
    graded++;
    if (!r.current?.length || Math.abs(r.current[0]! - s.score) > 1e-6) wrong++;
  }
  // Rows no client was told about, grades beyond one per submission, more than one grade for the current run.
  const duplicated =
    rows.filter((r) => !acceptedIds.has(r.id)).length +
    rows.reduce((n, r) => n + Math.max(0, r.grades - 1) + Math.max(0, (r.current?.length ?? 0) - 1), 0);
  return {
    ...stream,
    graded,
    lost,
    duplicated,
    wrong,
    pending: rows.filter((r) => r.status === "queued" || r.status === "running").length,
    stuck: rows.filter((r) => r.pastLease).length,
    retaken: rows.filter((r) => r.claims > 1).length,
    recoverMs: recoveries.length ? Math.max(...recoveries) : 0,
    recoveries,
  };
}

/** The one line each fault test prints. */
export function report(fault: string, f: Figures): string {
  const line =
    `[faults] ${fault}: sent=${f.sent} accepted=${f.accepted} graded=${f.graded} lost=${f.lost} duplicated=${f.duplicated} ` +
    `wrong=${f.wrong} 5xx=${f.serverErrors} 503=${f.unavailable} network-errors=${f.networkErrors} requests=${f.requests} ` +
    `stuck=${f.stuck} retaken=${f.retaken} recover=${Number.isFinite(f.recoverMs) ? `${(f.recoverMs / 1000).toFixed(1)}s` : "never"}`;
  console.log(line);
  if (f.recoveries.length > 1)
    console.log(`[faults] ${fault}: recoveries ${f.recoveries.map((ms) => (ms / 1000).toFixed(1)).join(", ")} s`);
  if (f.problems.length) console.log(`[faults] ${fault}: ${f.problems.join(" | ")}`);
  return line;
}

/** The guarantees, as one object so a failure shows every figure at once. */
export function expectedFigures(f: Figures) {
  return {
    sent: f.sent,
    accepted: f.sent,
    graded: f.sent,
    lost: 0,
    duplicated: 0,
    wrong: 0,
    pending: 0,
    stuck: 0,
    gaveUp: 0,
    serverErrors: 0,
    badUnavailable: 0,
    refused: 0,
    keyMismatch: 0,
  };
}
