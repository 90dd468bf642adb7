/**
 * What a grade export costs for a large course: 10,000 students × 20 problems (2 assignments of 10), 1–2 graded
 * submissions each, some late, some overridden (bench/export-seed.ts), in a dedicated database. Each format is
 * exported to /dev/null by a child process running the compiled export code (GradeExporter, what the route and
 * `npm run export` run), which reports its time, CPU time and peak RSS (VmHWM: the whole process, Node included).
 * The baseline, in the same run, is the bare cursor read of the same query's rows on the same cursor with nothing done
 * to them: the difference is what the policy and formatting cost. Target: under 3 s and 200 MB per format. Prints a table; writes bench/results/export-<date>.json.
 *
 *   npm run bench:export [-- --repeats 3 --reseed]
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import pg from "pg";
import { applyMigrations } from "../src/db/migrate.ts";
import { EXPORT_FORMATS } from "../src/services/gradebook/exporter.ts";
import { BENCH, SEED_VERSION, seed } from "./export-seed.ts";

const base = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/autograder";
const DATABASE = "autograder_bench_export";
const urlFor = (db: string) => Object.assign(new URL(base), { pathname: `/${db}` }).toString();
const TARGET = { ms: 3000, mb: 200 };

interface Sample {
  ms: number;
  /** CPU time of this process during the export (user + system): less sensitive than wall time to a busy machine. */
  cpuMs: number;
  peakRssMb: number;
  rssBeforeMb: number;
  bytes: number;
  rows?: number;
}

/**
 * Child: one export (or the bare read) in a process of its own, on the compiled build as production runs it
 * (bench/export-child.mjs: node, dist/, no tsx, no Prisma client).
 */
function runChild(format: string): Promise<Sample> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ["bench/export-child.mjs", urlFor(DATABASE), BENCH.course, format],
      { env: process.env, maxBuffer: 1 << 20 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${format}: ${stderr || err.message}`)) : resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as Sample),
    ),
  );
}

async function prepare(reseed: boolean): Promise<void> {
  const admin = new pg.Client({ connectionString: urlFor("postgres") });
  await admin.connect();
  const exists = (await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [DATABASE])).rowCount === 1;
  let fresh = reseed || !exists;
  if (!fresh) {
    const c = new pg.Client({ connectionString: urlFor(DATABASE) });
    await c.connect();
    const marker = await c.query(`SELECT "value" FROM "Setting" WHERE "key" = 'bench.seed'`).catch(() => ({ rows: [] }));
    fresh = marker.rows[0]?.value !== SEED_VERSION;
    await c.end();
  }
  if (fresh) {
    await admin.query(`DROP DATABASE IF EXISTS "${DATABASE}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${DATABASE}"`);
    await applyMigrations(urlFor(DATABASE));
    const c = new pg.Client({ connectionString: urlFor(DATABASE) });
    await c.connect();
    const t0 = performance.now();
    await seed(c);
    console.log(`seeded ${DATABASE} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await c.end();
  }
  await admin.end();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { repeats: { type: "string", default: "3" }, reseed: { type: "boolean" } },
  });
  // The children run dist/: compile it first when a source changed since the last build (as npm start does).
  execFileSync(process.execPath, ["scripts/build.mjs", "--if-stale"], { stdio: "inherit" });
  await prepare(values.reseed ?? false);
  const c = new pg.Client({ connectionString: urlFor(DATABASE) });
  await c.connect();
  const counts = (
    await c.query(`SELECT (SELECT count(*) FROM "Enrollment")::int AS students, (SELECT count(*) FROM "Submission")::int AS submissions,
    (SELECT count(*) FROM "Grade")::int AS grades, (SELECT count(*) FROM "ScoreOverride")::int AS overrides`)
  ).rows[0];
  await c.end();
  const repeats = Number(values.repeats);
  const results: Record<
    string,
    { ms: number; msRuns: number[]; cpuMs: number; peakRssMb: number; rssBeforeMb: number; bytes: number; rows?: number }
  > = {};
  for (const format of ["baseline", ...EXPORT_FORMATS]) {
    const runs: Sample[] = [];
    for (let i = 0; i < repeats; i++) runs.push(await runChild(format));
    results[format] = {
      ms: median(runs.map((r) => r.ms)),
      msRuns: runs.map((r) => r.ms),
      cpuMs: median(runs.map((r) => r.cpuMs)),
      peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)),
      rssBeforeMb: median(runs.map((r) => r.rssBeforeMb)),
      bytes: runs[0]!.bytes,
      ...(runs[0]!.rows ? { rows: runs[0]!.rows } : {}),
    };
  }
  const baseline = results.baseline!.ms;
  const load = loadavg().map((x) => Number(x.toFixed(1)));
  console.log(
    `\n${counts.students} students × ${BENCH.assignments * BENCH.problemsPerAssignment} problems, ${counts.submissions} submissions, ${counts.overrides} overrides; median of ${repeats}; load average ${load.join(", ")} on ${cpus().length} CPUs`,
  );
  console.log("format     time ms   × baseline   CPU ms   peak RSS MB   RSS before MB   export +MB   output MB   target");
  for (const [format, r] of Object.entries(results)) {
    const ok = r.ms < TARGET.ms && r.peakRssMb < TARGET.mb ? "ok" : "MISSED";
    console.log(
      `${format.padEnd(9)} ${String(r.ms).padStart(8)} ${(r.ms / baseline).toFixed(2).padStart(12)} ${String(r.cpuMs).padStart(8)} ${String(r.peakRssMb).padStart(13)} ${String(r.rssBeforeMb).padStart(15)} ${String(r.peakRssMb - r.rssBeforeMb).padStart(12)} ${(r.bytes / 2 ** 20).toFixed(1).padStart(11)}   ${format === "baseline" ? "" : ok}`,
    );
  }
  const date = new Date().toISOString();
  await mkdir("bench/results", { recursive: true });
  const file = `bench/results/export-${date.slice(0, 10)}.json`;
  await writeFile(
    file,
    JSON.stringify(
      {
        date,
        machine: { cpus: cpus().length, memGb: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverage: load },
        data: counts,
        target: TARGET,
        repeats,
        results,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`\nwrote ${file}`);
}

await main();
