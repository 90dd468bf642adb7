import type { Db } from "../../db.ts";
import { requireStaff } from "../access.ts";
import type { Principal } from "../auth.ts";
import { GradeExporter, type ExportFormat, type ExportResult } from "./exporter.ts";

export { EXPORT_FORMATS, type ExportFormat, type ExportResult } from "./exporter.ts";

/**
 * Grade exports and course statistics for course staff and admins: the access check (on the app's Prisma client),
 * then GradeExporter (plain pg, the same code `npm run export` runs). Closed with the app.
 */
export class ExportService {
  private readonly exporter: GradeExporter;

  constructor(
    private readonly db: Db,
    databaseUrl: string,
  ) {
    this.exporter = new GradeExporter(databaseUrl);
  }

  close(): Promise<void> {
    return this.exporter.close();
  }

  async statistics(p: Principal, courseId: string, opts: { assignmentId?: string } = {}) {
    await requireStaff(this.db, p, courseId);
    return this.exporter.statistics(courseId, opts);
  }

  /** Access and the assignment filter are checked before this returns, so errors come before any byte is sent. */
  async export(
    p: Principal,
    courseId: string,
    format: ExportFormat,
    opts: { assignmentId?: string; now?: Date } = {},
  ): Promise<ExportResult> {
    await requireStaff(this.db, p, courseId);
    return this.exporter.export(courseId, format, opts);
  }
}
