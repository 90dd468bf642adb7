/**
 * Exports a course's grades on the server, as an admin, with the same streaming code as
 * GET /v1/courses/{id}/grades (same cursor, same policy, same formats):
 *
 *   npm run export -- --course dl-101 --format canvas --out grades.csv
 *   npm run export -- --course dl-101 --format json --assignment <id> > grades.json
 *
 * Reads DATABASE_URL (and the rest of the environment) like the server.
 */
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { z } from "zod";
import { loadConfig } from "../config.ts";
import { AppError } from "../errors.ts";
import { EXPORT_FORMATS, GradeExporter, type ExportFormat } from "../services/gradebook/exporter.ts";

const usage = `usage: npm run export -- --course <slug> --format ${EXPORT_FORMATS.join("|")} [--assignment <id>] [--out <file>]`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      course: { type: "string" },
      format: { type: "string", default: "json" },
      assignment: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return (console.log(usage), 0);
  const badAssignment = values.assignment !== undefined && !z.uuid().safeParse(values.assignment).success;
  if (!values.course || !EXPORT_FORMATS.includes(values.format as ExportFormat) || badAssignment) {
    console.error(usage);
    return 2;
  }
  const config = loadConfig();
  // The server's own authority (an admin on the server), so no access check: GradeExporter on plain pg, without the
  // Prisma client or the app, is all this process loads.
  const exports = new GradeExporter(config.DATABASE_URL);
  try {
    const courseId = await exports.courseIdBySlug(values.course);
    if (!courseId) {
      console.error(`No course with slug '${values.course}'.`);
      return 1;
    }
    const out = await exports.export(courseId, values.format as ExportFormat, { assignmentId: values.assignment });
    const body = Buffer.isBuffer(out.body) ? Readable.from([out.body]) : out.body;
    // pipeline waits for the file (or stdout) to drain, so a slow disk holds the cursor back rather than filling memory.
    await pipeline(body, values.out ? createWriteStream(values.out) : process.stdout);
    if (values.out) console.error(`Wrote ${values.out} (${out.contentType}).`);
    return 0;
  } catch (e) {
    console.error(e instanceof AppError ? `${e.code}: ${e.message}` : e);
    return 1;
  } finally {
    await exports.close();
  }
}

process.exitCode = await main();
