import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CANVAS_ID,
  HOSTILE_TITLE,
  OVERRIDE_COMMENT,
  STUDENTS,
  buildGradebook,
  type Gradebook,
  type StudentKey,
} from "./helpers/gradebook-fixture.ts";
import { createHarness, type Harness } from "./helpers/harness.ts";
import { enroll, mkCourse, mkUser } from "./helpers/people.ts";

/**
 * Every export format of a known gradebook, cell by cell. The table below is the gradebook's scores of record,
 * written out by hand from the answers in the fixture; each format must say exactly that.
 */

type Cell = { sub: string; attempt: number; raw: number; lf: number; score: number; override?: true } | null;
const ASSIGNMENTS = ["onTime", "late"] as const;
const PROBLEMS = ["pick", "pi"] as const;
const MAX = { pick: 2, pi: 1 };
/** [onTime pick, onTime pi, late pick, late pi] per student. */
const TABLE: Record<StudentKey, [Cell, Cell, Cell, Cell]> = {
  plus: [
    { sub: "plus/onTime/pick/1", attempt: 1, raw: 0, lf: 1, score: 0 },
    null,
    null,
    { sub: "plus/late/pi/1", attempt: 1, raw: 1, lf: 0.5, score: 0.5 },
  ],
  minus: [null, null, null, null],
  at: [null, null, { sub: "at/late/pick/1", attempt: 1, raw: 2, lf: 0.5, score: 1 }, null],
  ann: [{ sub: "ann/onTime/pick/1", attempt: 1, raw: 2, lf: 1, score: 2 }, null, null, null],
  obrien: [
    { sub: "obrien/onTime/pick/2", attempt: 2, raw: 2, lf: 1, score: 2 },
    { sub: "obrien/onTime/pi/1", attempt: 1, raw: 1, lf: 1, score: 1 },
    null,
    null,
  ],
  zoe: [
    { sub: "zoe/onTime/pick/1", attempt: 1, raw: 0, lf: 1, score: 1.5, override: true },
    { sub: "zoe/onTime/pi/1", attempt: 1, raw: 0, lf: 1, score: 0 },
    null,
    null,
  ],
};
const ATTEMPTS: Partial<Record<string, number>> = { "obrien/onTime/pick": 2 };
/** Assignment totals (null: no score of record at all). */
const TOTALS: Record<StudentKey, [number | null, number | null]> = {
  plus: [0, 0.5],
  minus: [null, null],
  at: [null, 1],
  ann: [2, null],
  obrien: [3, null],
  zoe: [1.5, null],
};
const esc = (s: string) => (/^[=+\-@\t\r]/.test(s) ? `'${s}` : s);

let h: Harness;
let g: Gradebook;
const id = (key: string) => g.subs.get(key)!;
const assignmentId = (a: (typeof ASSIGNMENTS)[number]) => (a === "onTime" ? g.onTime : g.late);
const get = (query: string, token = g.world.instructor.token) => h.call("GET", `/v1/courses/${g.world.courseId}/grades${query}`, { token });
const rows = (body: string) => parse(body, { relax_quotes: false }) as string[][];

beforeAll(async () => {
  h = await createHarness("export");
  h.startWorker();
  g = await buildGradebook(h);
}, 300_000);
afterAll(async () => h?.close());

describe("grade exports", () => {
  it("json: every student, assignment and problem with the counted submission, penalty and override", async () => {
    const res = await get("?format=json");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.headers["content-disposition"]).toMatch(/^attachment; filename="stats-101-\d{4}-\d{2}-\d{2}-grades\.json"$/);
    const expected = STUDENTS.map((s) => ({
      userId: g.users[s.key].id,
      name: s.name,
      email: s.email,
      assignments: ASSIGNMENTS.map((a, ai) => ({
        assignmentId: assignmentId(a),
        title: a === "onTime" ? HOSTILE_TITLE : "Late work",
        total: TOTALS[s.key][ai],
        maxTotal: 3,
        problems: PROBLEMS.map((p, pi) => {
          const c = TABLE[s.key][ai * 2 + pi]!;
          return {
            problem: p,
            score: c?.score ?? null,
            maxScore: MAX[p],
            submissionId: c ? id(c.sub) : null,
            attempt: c?.attempt ?? null,
            rawScore: c?.raw ?? null,
            lateFactor: c?.lf ?? null,
            penalty: c ? (c.override ? 0 : c.raw - c.score) : null,
            override: c?.override ? { score: 1.5, comment: OVERRIDE_COMMENT, byId: g.world.instructor.id, at: expect.any(String) } : null,
            attemptsUsed: c ? (ATTEMPTS[`${s.key}/${a}/${p}`] ?? 1) : 0,
            pending: 0,
          };
        }),
      })),
    }));
    expect(res.json()).toEqual(expected);
  });

  it("csv: one row per (student, problem), text cells escaped against injection, names intact", async () => {
    const res = await get("?format=csv");
    expect(res.headers["content-type"]).toBe("text/csv; charset=utf-8");
    expect(res.headers["content-disposition"]).toMatch(/filename="stats-101-\d{4}-\d{2}-\d{2}-grades\.csv"$/);
    const header = [
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
    ];
    const expected = [header];
    for (const s of STUDENTS)
      ASSIGNMENTS.forEach((a, ai) =>
        PROBLEMS.forEach((p, pi) => {
          const c = TABLE[s.key][ai * 2 + pi]!;
          const n = (x: number | undefined) => (x === undefined ? "" : String(x));
          expected.push([
            g.users[s.key].id,
            s.email,
            esc(s.name),
            assignmentId(a),
            a === "onTime" ? `'${HOSTILE_TITLE}` : "Late work",
            p,
            n(c?.score),
            String(MAX[p]),
            c ? id(c.sub) : "",
            n(c?.attempt),
            n(c?.raw),
            n(c?.lf),
            c?.override ? "1.5" : "",
            c?.override ? `'${OVERRIDE_COMMENT}` : "",
          ]);
        }),
      );
    expect(rows(res.body)).toEqual(expected);
    // The hostile cells, spelled out: formulas are inert, the newline and quotes survive the round trip.
    const names = rows(res.body).map((r) => r[2]);
    expect(names).toContain("'+1");
    expect(names).toContain("'-2");
    expect(names).toContain("'@x");
    expect(names).toContain("Ann\nLine");
    expect(names).toContain(`O'Brien, "Jr."`);
    expect(names).toContain(`Zoë =HYPERLINK("http://x","y")`);
  });

  it("canvas: identity columns, Title (id) per assignment, the Points Possible row, blank for no score", async () => {
    const res = await get("?format=canvas");
    expect(res.headers["content-disposition"]).toMatch(/filename="stats-101-\d{4}-\d{2}-\d{2}-canvas\.csv"$/);
    expect(rows(res.body)).toEqual([
      ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", `'${HOSTILE_TITLE} (${g.onTime})`, `Late work (${CANVAS_ID})`],
      ["    Points Possible", "", "", "", "", "3", "3"],
      ...STUDENTS.map((s) => [esc(s.name), "", "", s.email, "", ...TOTALS[s.key].map((t) => (t === null ? "" : String(t)))]),
    ]);
  });

  it("moodle: Email address as the key, Title (Real) columns, '-' for no grade", async () => {
    const res = await get("?format=moodle");
    expect(res.headers["content-disposition"]).toMatch(/filename="stats-101-\d{4}-\d{2}-\d{2}-moodle\.csv"$/);
    const names: Record<StudentKey, [string, string]> = {
      plus: ["'+1", ""],
      minus: ["'-2", ""],
      at: ["'@x", ""],
      ann: ["Ann\nLine", ""],
      obrien: ["O'Brien,", `"Jr."`],
      zoe: ["Zoë", `'=HYPERLINK("http://x","y")`],
    };
    expect(rows(res.body)).toEqual([
      ["First name", "Last name", "Email address", `'${HOSTILE_TITLE} (Real)`, "Late work (Real)"],
      ...STUDENTS.map((s) => [...names[s.key], s.email, ...TOTALS[s.key].map((t) => (t === null ? "-" : String(t)))]),
    ]);
  });

  it("assignment= limits every format to that assignment", async () => {
    const canvas = rows((await get(`?format=canvas&assignment=${g.late}`)).body);
    expect(canvas[0]).toEqual(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", `Late work (${CANVAS_ID})`]);
    expect(canvas.slice(2).map((r) => r[5])).toEqual(STUDENTS.map((s) => (TOTALS[s.key][1] === null ? "" : String(TOTALS[s.key][1]))));
    const json = (await get(`?format=json&assignment=${g.late}`)).json();
    expect(json.map((s: { assignments: { assignmentId: string }[] }) => s.assignments.map((a) => a.assignmentId))).toEqual(
      STUDENTS.map(() => [g.late]),
    );
  });

  it("refuses an unknown format (400 listing the formats), students (403), outsiders and unknown assignments (404)", async () => {
    const bad = await get("?format=xlsx");
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain("json, csv, canvas, moodle, html");
    expect((await get("?format=csv", g.users.obrien.token)).statusCode).toBe(403);
    const outsider = await mkUser(h, g.world.adminToken, "outsider@example.org");
    const other = await mkCourse(h, g.world.adminToken, "other-101");
    await enroll(h, g.world.adminToken, other, outsider, "instructor");
    expect((await get("?format=csv", outsider.token)).statusCode).toBe(404);
    expect((await get("?format=csv", g.world.adminToken)).statusCode).toBe(200);
    const elsewhere = await h.call("POST", `/v1/courses/${other}/assignments`, {
      token: outsider.token,
      body: { problemSet: "export-set" },
    });
    expect((await get(`?format=csv&assignment=${elsewhere.json().id}`)).statusCode).toBe(404);
  });
});

describe("npm run export", () => {
  it("writes the same file as the route, from the server's DATABASE_URL", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "export-cli-"));
    try {
      const out = path.join(dir, "canvas.csv");
      const run = (args: string[]) =>
        new Promise<{ code: number; stderr: string }>((resolve) =>
          execFile(
            process.execPath,
            ["--import", "tsx", "src/cli/export.ts", ...args],
            { env: { ...process.env, DATABASE_URL: h.config.DATABASE_URL } },
            (err, _o, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stderr }),
          ),
        );
      const ok = await run(["--course", "stats-101", "--format", "canvas", "--out", out]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(await readFile(out, "utf8")).toBe((await get("?format=canvas")).body);
      const unknown = await run(["--course", "no-such-course", "--format", "csv"]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("No course with slug 'no-such-course'");
      expect((await run(["--course", "stats-101", "--format", "xlsx"])).code).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
