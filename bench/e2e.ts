/**
 * End to end: N `choice` submissions (default 20,000) from 100 students, pushed at 32 connections as fast as the
 * API takes them, into the platform as `npm start` runs it (the API and its worker child process, every default), then
 * waited for until all are graded. Reports graded/s (first accept → last grade) and accept-to-grade p50/p99 from
 * the rows' createdAt → gradedAt. Baseline in the same run: the bare route plus a bare BullMQ worker
 * (concurrency 16, own process) reading the row and writing a score.
 *
 *   npm run bench:e2e [-- --count 20000 --connections 32 --quick]
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { freshDatabase, flushPrefix, platformEnv, queuePrefix, sleep, startPlatform, startProcess, type Proc } from "./lib/platform.ts";
import { CHOICE_ANSWER, seedCourse } from "./lib/seed.ts";
import { errorCells, runLoad } from "./lib/load.ts";
import { acceptToGrade, waitAllDone } from "./lib/grading.ts";
import { log, printTable, progress, writeResult } from "./lib/report.ts";
import { ratio, summarize } from "./lib/stats.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string" },
    connections: { type: "string", default: "32" },
    students: { type: "string", default: "100" },
    quick: { type: "boolean", default: false },
  },
});
const COUNT = Number(values.count ?? (values.quick ? 1000 : 20_000));
const CONNECTIONS = Number(values.connections);
const db = await freshDatabase("e2e");
const prefix = queuePrefix("e2e");
const pool = new pg.Pool({ connectionString: db, max: 2 });
const procs: Proc[] = [];

try {
  log("platform: npm start's command (the API and its worker child process), defaults");
  const all = await startPlatform("all", "all", platformEnv(db, prefix));
  procs.push(all);
  const seeded = await seedCourse(all.url, { students: Number(values.students), problemSet: "bench-choice", upload: true });
  log(`pushing ${COUNT} submissions at ${CONNECTIONS} connections`);
  const push = await runLoad({
    url: all.url,
    path: `/v1/assignments/${seeded.assignmentId}/problems/pick/submissions`,
    body: CHOICE_ANSWER,
    connections: CONNECTIONS,
    amount: COUNT,
    tokens: seeded.students.map((s) => s.token),
  });
  log(`accepted ${push.ok} in ${push.durationS.toFixed(1)} s; waiting for grades`);
  const done = await waitAllDone(pool, seeded.assignmentId, 30 * 60_000, progress("platform"));
  const lat = await acceptToGrade(pool, seeded.assignmentId);
  const platform = {
    push,
    graded: done.done,
    failed: done.failed,
    gradedPerSec: (1000 * lat.n) / (lat.lastMs - lat.firstMs),
    latency: lat,
  };
  await all.stop();
  procs.length = 0;

  log("baseline: bare route + bare BullMQ worker (concurrency 16)");
  const env = { DATABASE_URL: db, QUEUE_PREFIX: `${prefix}-bare` };
  procs.push(await startProcess("bare-pipeline", "bench/lib/bare-pipeline.ts", [], env, { readyPath: "/" }));
  const route = await startProcess("bare-route", "bench/lib/bare-route.ts", [], env);
  procs.push(route);
  await pool.query("TRUNCATE bench_submission");
  const barePush = await runLoad({
    url: route.url,
    path: "/submit",
    body: CHOICE_ANSWER,
    connections: CONNECTIONS,
    amount: COUNT,
    tokens: seeded.students.map((s) => s.token),
  });
  const until = Date.now() + 30 * 60_000;
  let graded = 0;
  while (Date.now() < until) {
    graded = (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM bench_submission WHERE status = 'graded'")).rows[0]!.n;
    if (graded >= barePush.ok) break;
    await sleep(250);
  }
  const { rows } = await pool.query<{ ms: number; created: Date; graded: Date }>(
    `SELECT extract(epoch FROM graded_at - created_at) * 1000 AS ms, created_at AS created, graded_at AS graded
       FROM bench_submission WHERE status = 'graded'`,
  );
  const first = Math.min(...rows.map((r) => r.created.getTime()));
  const last = Math.max(...rows.map((r) => r.graded.getTime()));
  const bare = {
    push: barePush,
    graded,
    gradedPerSec: (1000 * rows.length) / (last - first),
    latency: summarize(rows.map((r) => Number(r.ms))),
  };

  const table = printTable(`End to end: ${COUNT.toLocaleString("en-US")} choice submissions, ${CONNECTIONS} connections`, [
    {
      pipeline: "platform (npm start, defaults)",
      "accepted/s": Math.round(push.reqPerSec),
      accepted: push.ok,
      ...errorCells(push),
      graded: platform.graded,
      "graded/s": Math.round(platform.gradedPerSec),
      "accept→grade p50 ms": Math.round(lat.p50),
      "accept→grade p99 ms": Math.round(lat.p99),
    },
    {
      pipeline: "bare (INSERT + queue.add; worker ×16)",
      "accepted/s": Math.round(barePush.reqPerSec),
      accepted: barePush.ok,
      ...errorCells(barePush),
      graded,
      "graded/s": Math.round(bare.gradedPerSec),
      "accept→grade p50 ms": Math.round(bare.latency.p50),
      "accept→grade p99 ms": Math.round(bare.latency.p99),
    },
  ]);
  const r = ratio(platform.gradedPerSec, bare.gradedPerSec);
  console.log(`graded/s ratio platform/bare ${r.toFixed(2)}× (target ≥ 0.5): ${r >= 0.5 ? "met" : "MISSED"}`);
  console.log(`accept→grade p99 ${Math.round(lat.p99)} ms (target ≤ 1,000 ms): ${lat.p99 <= 1000 ? "met" : "MISSED"}`);
  await writeResult("e2e", { count: COUNT, connections: CONNECTIONS, platform, bare, ratio: r, table });
} finally {
  for (const p of procs) await p.stop();
  await pool.end();
  await flushPrefix(prefix);
  await flushPrefix(`${prefix}-bare`);
}
