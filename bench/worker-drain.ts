/**
 * The grading pipeline alone: N `choice` submissions are accepted by an API with no worker running (so their jobs
 * wait in the queue), then one worker process (`src/main.ts worker`, every default) starts and drains them. Reports
 * the drain rate (graded/s from the worker's readiness to the last grade) and the worker's queries per grade from
 * pg_stat_database. Unlike bench:e2e this leaves out ingest, so a change to the worker shows as itself.
 *
 *   npx tsx bench/worker-drain.ts [-- --count 3000 --label after --cpu-prof]
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { waitAllDone } from "./lib/grading.ts";
import { runLoad } from "./lib/load.ts";
import { flushPrefix, freshDatabase, platformEnv, queuePrefix, startPlatform } from "./lib/platform.ts";
import { log, printTable, progress, writeResult } from "./lib/report.ts";
import { CHOICE_ANSWER, seedCourse } from "./lib/seed.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "3000" },
    label: { type: "string", default: "worker" },
    "cpu-prof": { type: "boolean", default: false },
    env: { type: "string", multiple: true, default: [] },
  },
});
const COUNT = Number(values.count);
const extraEnv = Object.fromEntries(values.env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
const db = await freshDatabase(`drain_${values.label}`);
const prefix = queuePrefix("drain");
const pool = new pg.Pool({ connectionString: db, max: 2 });
const env = platformEnv(db, prefix, extraEnv);

try {
  const api = await startPlatform("drain-api", "api", { ...env, RATE_LIMIT_PER_MIN: "0" });
  const seeded = await seedCourse(api.url, { students: 50, problemSet: "bench-choice", upload: true });
  const push = await runLoad({
    url: api.url,
    path: `/v1/assignments/${seeded.assignmentId}/problems/pick/submissions`,
    body: CHOICE_ANSWER,
    connections: 16,
    amount: COUNT,
    tokens: seeded.students.map((s) => s.token),
  });
  await api.stop();
  log(`${push.ok} submissions queued; starting the worker`);
  const stat = async () =>
    (
      await pool.query<{ xact: string; tup: string }>(
        `SELECT xact_commit + xact_rollback AS xact, tup_returned + tup_fetched + tup_inserted + tup_updated AS tup
           FROM pg_stat_database WHERE datname = current_database()`,
      )
    ).rows[0]!;
  const worker = await startPlatform(
    "drain-worker",
    "worker",
    env,
    values["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir=bench/results/profiles"] : undefined,
  );
  const before = await stat();
  const t0 = Date.now();
  const done = await waitAllDone(pool, seeded.assignmentId, 20 * 60_000, progress("worker"));
  const seconds = (Date.now() - t0) / 1000;
  const after = await stat();
  await worker.stop();
  const row = {
    label: values.label,
    env: JSON.stringify(extraEnv),
    queued: push.ok,
    graded: done.done,
    failed: done.failed,
    "drain s": seconds.toFixed(1),
    "graded/s": Math.round(done.done / seconds),
    "worker startup ms": Math.round(worker.startupMs),
    // Transactions include every statement outside one (Prisma sends each query as its own): about round trips.
    "db transactions/grade": ((Number(after.xact) - Number(before.xact)) / Math.max(1, done.done)).toFixed(1),
  };
  const table = printTable(`Worker drain: ${COUNT.toLocaleString("en-US")} queued choice submissions, one worker process`, [row]);
  await writeResult(`worker-drain-${values.label}`, { count: COUNT, row, table });
} finally {
  await pool.end();
  await flushPrefix(prefix);
}
