/**
 * Exam spike: S simulated students (default 1,000) each submit 15 answers at random moments within W seconds
 * (default 60) to the mid-term review set from problems/ (choice, numeric, expression, text; every 25th student
 * also uploads a small ONNX model, a reference solution), against the platform as `npm start` runs it. Reports
 * p99 accept-to-grade for non-ONNX and ONNX answers separately and every error (target: none; non-ONNX p99 ≤ 2 s).
 *
 *   npm run bench:spike [-- --students 1000 --window 60 --quick]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import pg from "pg";
import seedrandom from "seedrandom";
import { freshDatabase, flushPrefix, platformEnv, queuePrefix, sleep, startPlatform, type Proc } from "./lib/platform.ts";
import { seedWithUnlimitedApi } from "./lib/seed.ts";
import { acceptToGrade, waitAllDone } from "./lib/grading.ts";
import { log, printTable, progress, writeResult } from "./lib/report.ts";
import { summarize } from "./lib/stats.ts";

const { values } = parseArgs({
  options: {
    students: { type: "string" },
    window: { type: "string" },
    quick: { type: "boolean", default: false },
    "max-in-flight": { type: "string", default: "256" },
  },
});
const STUDENTS = Number(values.students ?? (values.quick ? 100 : 1000));
const WINDOW_S = Number(values.window ?? (values.quick ? 20 : 60));
const PER_STUDENT = 15;
const MAX_IN_FLIGHT = Number(values["max-in-flight"]);
const SET_DIR = "problems/dl-midterm-review";

const solution = (slug: string, file: string) => JSON.parse(readFileSync(`${SET_DIR}/${slug}/solutions/${file}`, "utf8")) as unknown;
/** Answers by problem: reference solutions where they are literal; randomised numeric problems get a plain (wrong) value. */
const ANSWERS: [string, unknown][] = [
  ["moco-queue", solution("moco-queue", "reference.json")],
  ["p1-filter-shape", solution("p1-filter-shape", "reference.json")],
  ["p3-ae-vs-vae", solution("p3-ae-vs-vae", "reference.json")],
  ["p5-cgan-condition", solution("p5-cgan-condition", "reference.json")],
  ["simclr-projection-head", solution("simclr-projection-head", "reference.json")],
  ["moco-momentum", { value: 0.5 }],
  ["p3-vae-kl", { value: 1.5 }],
  ["p8-yolo-output-size", { value: 1470 }],
  ["sparse-coding-objective", { value: 2 }],
  ["p2-pixel-weight", solution("p2-pixel-weight", "reference-rewritten.json")],
  ["p4-gan-difficulties", solution("p4-gan-difficulties", "reference-paraphrase.json")],
  ["p8-yolo-pipeline", solution("p8-yolo-pipeline", "reference-brief.json")],
];
const ONNX = ["barlow-twins-loss", "p3-vae-loss-net", "simclr-nt-xent"].map((slug) => ({
  slug,
  bytes: readFileSync(`${SET_DIR}/${slug}/solutions/reference.onnx`),
}));

const db = await freshDatabase("spike");
const prefix = queuePrefix("spike");
const pool = new pg.Pool({ connectionString: db, max: 2 });
const procs: Proc[] = [];

try {
  log(`seeding ${STUDENTS} students`);
  const { seeded } = await seedWithUnlimitedApi(platformEnv(db, prefix), { students: STUDENTS, problemSet: "dl-midterm-review" });
  log("platform: npm start's command (the API and its worker child process), defaults");
  const all = await startPlatform("all", "all", platformEnv(db, prefix));
  procs.push(all);

  // The schedule: 15 submissions per student at seeded-random moments in the window.
  const rng = seedrandom("spike");
  const plan = seeded.students.flatMap((s, i) =>
    Array.from({ length: PER_STUDENT }, (_, k) => {
      const onnx = i % 25 === 0 && k === 0 ? ONNX[(i / 25) % ONNX.length]! : null;
      const [slug, answer] = ANSWERS[(i + k) % ANSWERS.length]!;
      return { at: rng() * WINDOW_S * 1000, token: s.token, slug: onnx?.slug ?? slug, answer, model: onnx?.bytes };
    }),
  );
  plan.sort((a, b) => a.at - b.at);
  const errors: Record<string, number> = {};
  const clientMs: number[] = [];
  let lateStarts = 0;
  let inFlight = 0;
  const base = `${all.url}/v1/assignments/${seeded.assignmentId}/problems`;
  const t0 = performance.now();
  log(`${plan.length} submissions within ${WINDOW_S} s (at most ${MAX_IN_FLIGHT} in flight)`);
  const sends = plan.map(async (p) => {
    await sleep(p.at - (performance.now() - t0));
    while (inFlight >= MAX_IN_FLIGHT) await sleep(5);
    if (performance.now() - t0 > p.at + 1000) lateStarts++;
    inFlight++;
    const start = performance.now();
    try {
      let body: FormData | string;
      if (p.model) {
        body = new FormData();
        body.append("model", new Blob([new Uint8Array(p.model)]), "model.onnx");
      } else body = JSON.stringify({ answer: p.answer });
      const res = await fetch(`${base}/${p.slug}/submissions`, {
        method: "POST",
        headers: { authorization: `Bearer ${p.token}`, ...(p.model ? {} : { "content-type": "application/json" }) },
        body,
      });
      const text = await res.text();
      if (res.status !== 202) {
        const key = `${res.status} ${/"code":"(\w+)"/.exec(text)?.[1] ?? ""}`.trim();
        errors[key] = (errors[key] ?? 0) + 1;
      }
    } catch (e) {
      const key = `socket ${(e as Error).message}`;
      errors[key] = (errors[key] ?? 0) + 1;
    } finally {
      inFlight--;
      clientMs.push(performance.now() - start);
    }
  });
  await Promise.all(sends);
  const pushS = (performance.now() - t0) / 1000;
  log(`sent in ${pushS.toFixed(1)} s; waiting for grades`);
  const done = await waitAllDone(pool, seeded.assignmentId, 30 * 60_000, progress("spike"));
  const onnxSlugs = ONNX.map((o) => o.slug);
  const nonOnnx = await acceptToGrade(
    pool,
    seeded.assignmentId,
    ANSWERS.map(([s]) => s),
  );
  const onnx = await acceptToGrade(pool, seeded.assignmentId, onnxSlugs);
  const { rows: statuses } = await pool.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM "Submission" WHERE "assignmentId" = $1 GROUP BY status ORDER BY status`,
    [seeded.assignmentId],
  );
  const client = summarize(clientMs);
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  const table = printTable(`Exam spike: ${STUDENTS} students × ${PER_STUDENT} answers within ${WINDOW_S} s (npm start defaults)`, [
    {
      answers: "non-ONNX",
      n: nonOnnx.n,
      "accept→grade p50 ms": Math.round(nonOnnx.p50),
      "p99 ms": Math.round(nonOnnx.p99),
      "max ms": Math.round(nonOnnx.max),
    },
    {
      answers: "ONNX",
      n: onnx.n,
      "accept→grade p50 ms": Math.round(onnx.p50),
      "p99 ms": Math.round(onnx.p99),
      "max ms": Math.round(onnx.max),
    },
  ]);
  console.log(`submit (client) p50 ${Math.round(client.p50)} ms, p99 ${Math.round(client.p99)} ms; started > 1 s late: ${lateStarts}`);
  console.log(`statuses: ${statuses.map((s) => `${s.status} ${s.n}`).join(", ")}; errors: ${errorCount ? JSON.stringify(errors) : "none"}`);
  console.log(
    `target non-ONNX p99 ≤ 2,000 ms: ${nonOnnx.p99 <= 2000 ? "met" : "MISSED"}; zero errors: ${errorCount === 0 ? "met" : "MISSED"}`,
  );
  await writeResult("spike", {
    students: STUDENTS,
    perStudent: PER_STUDENT,
    windowS: WINDOW_S,
    pushS,
    lateStarts,
    client,
    errors,
    done,
    statuses,
    nonOnnx,
    onnx,
    table,
  });
} finally {
  for (const p of procs) await p.stop();
  await pool.end();
  await flushPrefix(prefix);
}
