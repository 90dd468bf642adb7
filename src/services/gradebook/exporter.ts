import type { Readable } from "node:stream";
import type pg from "pg";
import { round6 } from "../../../graders/result.ts";
import { NotFoundError } from "../../errors.ts";
import { resilientPool } from "../../lib/pg-pool.ts";
import { csvExport, jsonExport } from "./export-formats.ts";
import { streamStudentGrades, type ExportAssignment, type ExportProblem } from "./export-stream.ts";
import { assignmentPolicy, type AssignmentRules } from "./policy.ts";
import { courseStatistics } from "./statistics.ts";
import { STATISTICS_CSP, statisticsHtml } from "./statistics-html.ts";

/**
 * Grade exports and course statistics on plain pg, with no access check (ExportService adds it for requests; the
 * `npm run export` command acts as the server): no Prisma client, no app, so the command and the benchmark load
 * only what an export runs. Rows come from a cursor on a pool of its own, opened on first use.
 */

export const EXPORT_FORMATS = ["json", "csv", "canvas", "moodle", "html"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportResult {
  contentType: string;
  /** Content-Disposition: attachment for files, inline for the HTML report. */
  disposition: string;
  /** A route-specific Content-Security-Policy (the HTML report). */
  csp?: string;
  body: Readable | Buffer;
}

const CONTENT_TYPES: Record<ExportFormat, string> = {
  json: "application/json; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  canvas: "text/csv; charset=utf-8",
  moodle: "text/csv; charset=utf-8",
  html: "text/html; charset=utf-8",
};
const SUFFIX: Record<ExportFormat, string> = {
  json: "grades.json",
  csv: "grades.csv",
  canvas: "canvas.csv",
  moodle: "moodle.csv",
  html: "statistics.html",
};

/** Epoch milliseconds of a UTC `timestamp` column (Prisma stores UTC; pg would read it as local time). */
const ms = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;
const ASSIGNMENTS_SQL = `
SELECT a."id", a."title", a."lmsAssignmentId", a."revisionId", ${ms('a."opensAt"')} AS "opensAt", ${ms('a."dueAt"')} AS "dueAt",
       ${ms('a."lateUntil"')} AS "lateUntil", a."latePenaltyPerDay", a."lateSteps", a."maxAttempts", a."scorePolicy"::text AS "scorePolicy",
       a."timeLimitMinutes", a."countPrecheckRejections", a."countRunRejections"
FROM "Assignment" a WHERE a."courseId" = $1::uuid AND ($2::uuid IS NULL OR a."id" = $2::uuid)
ORDER BY a."createdAt", a."id"`;
const PROBLEMS_SQL = `
SELECT "revisionId", "slug", "title", "points", "graderType"::text AS "graderType"
FROM "Problem" WHERE "revisionId" = ANY($1::uuid[]) ORDER BY "position"`;

/** An ASSIGNMENTS_SQL row: the stored rules, times as epoch milliseconds. */
interface AssignmentRow extends Omit<AssignmentRules, "opensAt" | "dueAt" | "lateUntil"> {
  id: string;
  title: string;
  lmsAssignmentId: string | null;
  revisionId: string;
  opensAt: number | null;
  dueAt: number | null;
  lateUntil: number | null;
}

const date = (v: number | null) => (v === null ? null : new Date(v));

export class GradeExporter {
  private pool: pg.Pool | null = null;

  constructor(private readonly databaseUrl: string) {}

  private cursorPool(): pg.Pool {
    // A few connections: each export holds one for its whole length, and exports are rare, admin-driven work.
    if (!this.pool) {
      this.pool = resilientPool({ connectionString: this.databaseUrl, max: 4, idleTimeoutMillis: 30_000 });
    }
    return this.pool;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  /** The course's id by its slug (the command line names courses by slug), or null. */
  async courseIdBySlug(slug: string): Promise<string | null> {
    const { rows } = await this.cursorPool().query<{ id: string }>(`SELECT "id" FROM "Course" WHERE "slug" = $1`, [slug]);
    return rows[0]?.id ?? null;
  }

  /** The course and its assignments (all, or the one asked for) with the problems of their pinned revisions, in order. */
  async load(courseId: string, assignmentId?: string) {
    const pool = this.cursorPool();
    const found = await pool.query<{ id: string; slug: string; title: string }>(
      `SELECT "id", "slug", "title" FROM "Course" WHERE "id" = $1::uuid`,
      [courseId],
    );
    const course = found.rows[0];
    if (!course) throw new NotFoundError("Course", courseId);
    const { rows } = await pool.query<AssignmentRow>(ASSIGNMENTS_SQL, [courseId, assignmentId ?? null]);
    if (assignmentId && rows.length === 0) throw new NotFoundError("Assignment", assignmentId);
    const problems = await pool.query<ExportProblem & { revisionId: string }>(PROBLEMS_SQL, [rows.map((a) => a.revisionId)]);
    const assignments: ExportAssignment[] = rows.map((a) => {
      const own = problems.rows
        .filter((p) => p.revisionId === a.revisionId)
        .map((p) => ({ slug: p.slug, title: p.title, points: p.points, graderType: p.graderType }));
      return {
        id: a.id,
        title: a.title,
        lmsAssignmentId: a.lmsAssignmentId,
        policy: assignmentPolicy({ ...a, opensAt: date(a.opensAt), dueAt: date(a.dueAt), lateUntil: date(a.lateUntil) }),
        problems: own,
        maxTotal: round6(own.reduce((t, q) => t + q.points, 0)),
      };
    });
    return { course, assignments };
  }

  async statistics(courseId: string, opts: { assignmentId?: string } = {}) {
    const { course, assignments } = await this.load(courseId, opts.assignmentId);
    const stats = await courseStatistics(assignments, streamStudentGrades(this.cursorPool(), courseId, assignments, { details: true }));
    return { course, generatedAt: new Date(), ...stats };
  }

  /** The course and assignment filter are checked before this returns, so errors come before any byte is sent. */
  async export(courseId: string, format: ExportFormat, opts: { assignmentId?: string; now?: Date } = {}): Promise<ExportResult> {
    const date = (opts.now ?? new Date()).toISOString().slice(0, 10);
    if (format === "html") {
      const stats = await this.statistics(courseId, opts);
      const filename = `${stats.course.slug}-${date}-${SUFFIX.html}`;
      return {
        contentType: CONTENT_TYPES.html,
        disposition: `inline; filename="${filename}"`,
        csp: STATISTICS_CSP,
        body: Buffer.from(statisticsHtml(stats)),
      };
    }
    const { course, assignments } = await this.load(courseId, opts.assignmentId);
    const students = streamStudentGrades(this.cursorPool(), courseId, assignments);
    // The slug is [a-z0-9-] (validated at creation), so the filename needs no quoting beyond the quotes.
    return {
      contentType: CONTENT_TYPES[format],
      disposition: `attachment; filename="${course.slug}-${date}-${SUFFIX[format]}"`,
      body: format === "json" ? jsonExport(students) : csvExport(format, assignments, students),
    };
  }
}
