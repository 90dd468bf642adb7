/**
 * Scale-out: graded/s with 1, 2 and 4 worker processes (`npm run worker`'s command, each its own process, as on
 * separate hosts) sharing one Redis and Postgres, the API in its own process (`npm run api`), all with defaults.
 * Same workload per point: N `choice` submissions (default 5,000) from 100 students at 32 connections into a fresh
 * assignment while no worker runs (so the API's accept rate does not cap the number), then the N workers start and
 * drain the queue: graded/s = graded / (first grade → last grade).
 *
 *   npm run bench:scale [-- --count 5000 --workers 1,2,4 --quick]
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { freshDatabase, flushPrefix, platformEnv, queuePrefix, startPlatform, type Proc } from "./lib/platform.ts";
import { api, CHOICE_ANSWER, seedCourse } from "./lib/seed.ts";
import { errorCells, runLoad } from "./lib/load.ts";
import { waitAllDone } from "./lib/grading.ts";
import { log, printTable, progress, writeResult } from "./lib/report.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string" },
    workers: { type: "string", default: "1,2,4" },
    connections: { type: "string", default: "32" },
    quick: { type: "boolean", default: false },
  },
});
const COUNT = Number(values.count ?? (values.quick ? 500 : 5000));
const WORKERS = values.workers!.split(",").map(Number);
const CONNECTIONS = Number(values.connections);
const db = await freshDatabase("scale");
const prefix = queuePrefix("scale");
const pool = new pg.Pool({ connectionString: db, max: 2 });
const procs: Proc[] = [];

try {
  const env = platformEnv(db, prefix);
  const apiProc = await startPlatform("api", "api", env);
  procs.push(apiProc);
  const seeded = await seedCourse(apiProc.url, { students: 100, problemSet: "bench-choice", upload: true });
  const points = [];
  for (const k of WORKERS) {
    const a = await api(apiProc.url, "POST", `/v1/courses/${seeded.courseId}/assignments`, seeded.instructor.token, {
      problemSet: "bench-choice",
      title: `scale ${k}`,
    });
    log(`${k} worker process(es): filling the queue first`);
    const push = await runLoad({
      url: apiProc.url,
      path: `/v1/assignments/${a.id}/problems/pick/submissions`,
      body: CHOICE_ANSWER,
      connections: CONNECTIONS,
      amount: COUNT,
      tokens: seeded.students.map((s) => s.token),
    });
    const workers = await Promise.all(Array.from({ length: k }, (_, i) => startPlatform(`worker-${k}-${i}`, "worker", env)));
    procs.push(...workers);
    const done = await waitAllDone(pool, a.id, 30 * 60_000, progress(`${k} workers`));
    const { rows } = await pool.query<{ first: Date; last: Date }>(
      `SELECT min(coalesce("gradedAt", "statusAt")) AS first, max(coalesce("gradedAt", "statusAt")) AS last FROM "Submission" WHERE "assignmentId" = $1`,
      [a.id],
    );
    const spanMs = rows[0]!.last.getTime() - rows[0]!.first.getTime();
    for (const w of workers) {
      await w.stop();
      procs.splice(procs.indexOf(w), 1);
    }
    points.push({ workers: k, push, done, spanMs, gradedPerSec: (1000 * done.done) / spanMs });
  }
  const one = points[0]!.gradedPerSec;
  const table = printTable(
    `Scale-out: a queue of ${COUNT.toLocaleString("en-US")} choice submissions drained by N worker processes (API in its own)`,
    [
      ...points.map((p) => ({
        workers: p.workers,
        "accepted/s": Math.round(p.push.reqPerSec),
        ...errorCells(p.push),
        graded: p.done.done,
        "graded/s": Math.round(p.gradedPerSec),
        "× one worker": `${(p.gradedPerSec / one).toFixed(2)}×`,
        "first → last grade s": Math.round(p.spanMs / 100) / 10,
      })),
    ],
  );
  await writeResult("scale-out", { count: COUNT, connections: CONNECTIONS, points, table });
} finally {
  for (const p of procs) await p.stop();
  await pool.end();
  await flushPrefix(prefix);
}
