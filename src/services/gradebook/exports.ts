import type { Readable } from "node:stream";
import pg from "pg";
import { round6 } from "../../../graders/result.ts";
import type { Db } from "../../db.ts";
import { NotFoundError } from "../../errors.ts";
import { requireStaff } from "../access.ts";
import type { Principal } from "../auth.ts";
import { csvExport, jsonExport } from "./export-formats.ts";
import { streamStudentGrades, type ExportAssignment } from "./export-stream.ts";
import { parseLateSteps, type AssignmentPolicy } from "./policy.ts";
import { courseStatistics } from "./statistics.ts";
import { STATISTICS_CSP, statisticsHtml } from "./statistics-html.ts";

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

/**
 * Grade exports and course statistics for course staff, admins and the `npm run export` command: one code path.
 * Rows come from a cursor on a pg pool of its own (Prisma has no cursors); the pool is opened on first use and
 * closed with the app.
 */
type AssignmentRow = Omit<AssignmentPolicy, "lateSteps"> & { lateSteps: unknown };

/** An assignment row's rules as the pure policy reads them (records.ts has the same for the grades API). */
const policyOf = (a: AssignmentRow): AssignmentPolicy => ({
  opensAt: a.opensAt,
  dueAt: a.dueAt,
  lateUntil: a.lateUntil,
  latePenaltyPerDay: a.latePenaltyPerDay,
  lateSteps: parseLateSteps(a.lateSteps),
  maxAttempts: a.maxAttempts,
  scorePolicy: a.scorePolicy,
  timeLimitMinutes: a.timeLimitMinutes,
  countPrecheckRejections: a.countPrecheckRejections,
  countRunRejections: a.countRunRejections,
});

export class ExportService {
  private pool: pg.Pool | null = null;

  constructor(
    private readonly db: Db,
    private readonly databaseUrl: string,
  ) {}

  private cursorPool(): pg.Pool {
    // A few connections: each export holds one for its whole length, and exports are rare, admin-driven work.
    if (!this.pool) {
      this.pool = new pg.Pool({ connectionString: this.databaseUrl, max: 4, idleTimeoutMillis: 30_000 });
      // An idle connection that Postgres closes (restart, admin command) is dropped by the pool; without a
      // listener its error event would crash the process. A checked-out one fails its export instead.
      this.pool.on("error", () => undefined);
    }
    return this.pool;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  /** The course and its assignments (all, or the one asked for), after the caller's access is checked. */
  private async load(p: Principal, courseId: string, assignmentId?: string) {
    await requireStaff(this.db, p, courseId);
    const course = await this.db.course.findUniqueOrThrow({ where: { id: courseId }, select: { id: true, slug: true, title: true } });
    const rows = await this.db.assignment.findMany({
      where: { courseId, ...(assignmentId ? { id: assignmentId } : {}) },
      orderBy: [{ createdAt: "asc" }, { id: "asc" }],
      include: {
        revision: {
          include: { problems: { orderBy: { position: "asc" }, select: { slug: true, title: true, points: true, graderType: true } } },
        },
      },
    });
    if (assignmentId && rows.length === 0) throw new NotFoundError("Assignment", assignmentId);
    const assignments: ExportAssignment[] = rows.map((a) => ({
      id: a.id,
      title: a.title,
      lmsAssignmentId: a.lmsAssignmentId,
      policy: policyOf(a),
      problems: a.revision.problems,
      maxTotal: round6(a.revision.problems.reduce((t, q) => t + q.points, 0)),
    }));
    return { course, assignments };
  }

  async statistics(p: Principal, courseId: string, opts: { assignmentId?: string } = {}) {
    const { course, assignments } = await this.load(p, courseId, opts.assignmentId);
    const stats = await courseStatistics(assignments, streamStudentGrades(this.cursorPool(), courseId, assignments, { details: true }));
    return { course, generatedAt: new Date(), ...stats };
  }

  /** Access and the assignment filter are checked before this returns, so errors come before any byte is sent. */
  async export(
    p: Principal,
    courseId: string,
    format: ExportFormat,
    opts: { assignmentId?: string; now?: Date } = {},
  ): Promise<ExportResult> {
    const date = (opts.now ?? new Date()).toISOString().slice(0, 10);
    if (format === "html") {
      const stats = await this.statistics(p, courseId, opts);
      const filename = `${stats.course.slug}-${date}-${SUFFIX.html}`;
      return {
        contentType: CONTENT_TYPES.html,
        disposition: `inline; filename="${filename}"`,
        csp: STATISTICS_CSP,
        body: Buffer.from(statisticsHtml(stats)),
      };
    }
    const { course, assignments } = await this.load(p, courseId, opts.assignmentId);
    const students = streamStudentGrades(this.cursorPool(), courseId, assignments);
    // The slug is [a-z0-9-] (validated at creation), so the filename needs no quoting beyond the quotes.
    return {
      contentType: CONTENT_TYPES[format],
      disposition: `attachment; filename="${course.slug}-${date}-${SUFFIX[format]}"`,
      body: format === "json" ? jsonExport(students) : csvExport(format, assignments, students),
    };
  }
}
