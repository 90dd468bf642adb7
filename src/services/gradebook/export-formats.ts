import { Readable } from "node:stream";
import { stringify } from "csv-stringify/sync";
import { round6 } from "../../../graders/result.ts";
import type { ProblemRecord } from "./policy.ts";
import type { AssignmentGrades, ExportAssignment, StudentGrades } from "./export-stream.ts";

/**
 * The export formats, each a stream over the student stream: the consumer's pace (a slow client, a full disk)
 * holds the cursor back, so memory stays at one student plus the streams' small buffers.
 */

export const CSV_FORMATS = ["csv", "canvas", "moodle"] as const;
type CsvFormat = (typeof CSV_FORMATS)[number];
type Cell = string | number | null;

/**
 * CSV injection: a spreadsheet runs a cell beginning with =, +, -, @, tab or CR as a formula. Text cells that do
 * are prefixed with an apostrophe (OWASP's advice); numbers are written as numbers and never touched.
 */
export function safeText(s: string): string {
  return /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

/** Points lost to lateness: none under an override (it replaces the score outright) or without a counted score. */
function penaltyOf(r: ProblemRecord): number | null {
  if (r.score === null || r.rawScore === null || r.override) return r.score === null ? null : 0;
  return round6(r.rawScore - r.score);
}

function jsonStudent(s: StudentGrades) {
  return {
    userId: s.userId,
    name: s.name,
    email: s.email,
    assignments: s.assignments.map((a) => ({
      assignmentId: a.assignment.id,
      title: a.assignment.title,
      total: a.graded ? a.total.score : null,
      maxTotal: a.total.maxScore,
      problems: a.problems.map((r) => ({
        problem: r.problem,
        score: r.score,
        maxScore: r.maxScore,
        submissionId: r.submissionId,
        attempt: r.attempt,
        rawScore: r.rawScore,
        lateFactor: r.lateFactor,
        penalty: penaltyOf(r),
        override: r.override && { score: r.override.score, comment: r.override.comment, byId: r.override.byId, at: r.override.at },
        attemptsUsed: r.attemptsUsed,
        pending: r.pending,
      })),
    })),
  };
}

/** About how much text is gathered before it is handed to the stream: one chunk per ~64 kB, not one per student or row. */
const CHUNK = 64 * 1024;

/** A JSON array written a few students at a time. */
export function jsonExport(students: AsyncIterable<StudentGrades>): Readable {
  return Readable.from(
    (async function* () {
      let chunk = "[";
      let first = true;
      for await (const s of students) {
        chunk += (first ? "\n" : ",\n") + JSON.stringify(jsonStudent(s));
        first = false;
        if (chunk.length >= CHUNK) {
          yield chunk;
          chunk = "";
        }
      }
      yield chunk + "\n]\n";
    })(),
  );
}

const total = (a: AssignmentGrades): number | null => (a.graded ? a.total.score : null);

/** Canvas's column title for an assignment: `Title (id)`, the Canvas id when linked, so the import updates that column. */
const canvasTitle = (a: ExportAssignment) => `${a.title} (${a.lmsAssignmentId ?? a.id})`;

/** First and last name as Moodle's export has them: the last word is the last name. */
function splitName(name: string): [string, string] {
  const trimmed = name.trim();
  const at = trimmed.lastIndexOf(" ");
  return at <= 0 ? [trimmed, ""] : [trimmed.slice(0, at), trimmed.slice(at + 1)];
}

/** Moodle's "no grade" marker: written verbatim (it is the one text cell exempt from the injection escape). */
const MOODLE_NO_GRADE: object = Object.freeze({ moodleNoGrade: true });

/** The header rows (a column header; Canvas's Points Possible row too). */
function csvHead(format: CsvFormat, assignments: ExportAssignment[]): Cell[][] {
  if (format === "csv")
    return [
      [
        "userId",
        "email",
        "name",
        "assignmentId",
        "assignmentTitle",
        "problem",
        "score",
        "maxScore",
        "submissionId",
        "attempt",
        "rawScore",
        "lateFactor",
        "overrideScore",
        "overrideComment",
      ],
    ];
  if (format === "canvas")
    // Canvas reads a row whose first cell says "Points Possible" as the maximum points, not as a student.
    return [
      ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", ...assignments.map((a) => safeText(canvasTitle(a)))],
      ["    Points Possible", null, null, null, null, ...assignments.map((a) => a.maxTotal)],
    ];
  // Moodle's import maps "Email address" to the user's email and a "Name (Real)" header to the grade item "Name".
  return [["First name", "Last name", "Email address", ...assignments.map((a) => safeText(`${a.title} (Real)`))]];
}

const t = (s: string | null | undefined): string | null => (s == null ? null : safeText(s));

/** One student's rows, appended to `out`. */
function csvStudent(format: CsvFormat, s: StudentGrades, out: (Cell | object)[][]): void {
  if (format === "csv") {
    const [userId, email, name] = [t(s.userId), t(s.email), t(s.name)];
    for (const a of s.assignments) {
      const [assignmentId, title] = [t(a.assignment.id), t(a.assignment.title)];
      for (const r of a.problems)
        out.push([
          userId,
          email,
          name,
          assignmentId,
          title,
          t(r.problem),
          r.score,
          r.maxScore,
          r.submissionId,
          r.attempt,
          r.rawScore,
          r.lateFactor,
          r.override?.score ?? null,
          t(r.override?.comment),
        ] satisfies Cell[]);
    }
  } else if (format === "canvas") {
    // ID and SIS User ID are Canvas's own ids, which we do not know: Canvas matches by SIS Login ID (the email), then name.
    out.push([t(s.name), null, null, t(s.email), null, ...s.assignments.map(total)] satisfies Cell[]);
  } else {
    const [first, last] = splitName(s.name);
    out.push([t(first), t(last), t(s.email), ...s.assignments.map((a) => total(a) ?? MOODLE_NO_GRADE)]);
  }
}

/** The Moodle marker is an object until the stringifier writes it, so no escaping step can mistake it for text. */
const CSV_OPTIONS = { cast: { object: (v: object) => (v === MOODLE_NO_GRADE ? "-" : JSON.stringify(v)) }, eof: true };

/**
 * csv-stringify writes every record (quoting commas, quotes and newlines); nothing here quotes by hand. Its synchronous
 * API, on ~1,000 rows at a time, rather than its stream: one object-mode stream step per row cost more than the CSV.
 */
export function csvExport(format: CsvFormat, assignments: ExportAssignment[], students: AsyncIterable<StudentGrades>): Readable {
  return Readable.from(
    (async function* () {
      let batch: (Cell | object)[][] = csvHead(format, assignments);
      for await (const s of students) {
        csvStudent(format, s, batch);
        if (batch.length >= 1000) {
          yield stringify(batch, CSV_OPTIONS);
          batch = [];
        }
      }
      if (batch.length) yield stringify(batch, CSV_OPTIONS);
    })(),
  );
}
