/**
 * Ingest: autocannon against POST /v1/assignments/{id}/problems/pick/submissions with a `choice` answer, the API
 * run as `npm run api` runs it (own process, full problems/ loaded), at 16/64/256 connections:
 *   (a) 200 students, tokens rotated per request, RATE_LIMIT_PER_MIN=0 so the limit never answers;
 *   (b) one student at the same concurrency with the default RATE_LIMIT_PER_MIN (its 429s are the configured behaviour).
 * Baselines in the same run: a bare Fastify route (raw INSERT + queue.add, own process) and pgbench inserting the
 * same row per transaction. Also measures startup to /readyz with problems/ loaded (cold: empty database; warm).
 *
 *   npm run bench:ingest [-- --duration 10 --connections 16,64,256 --warmup 3 --quick --profile]
 * --warmup: seconds of unmeasured load on each target before the first point (0: none).
 * --profile: the API under --cpu-prof for case (a) at 64 connections only; prints its top self-time functions.
 */
import { mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { startProcess, freshDatabase, platformEnv, queuePrefix, startPlatform, flushPrefix, type Proc } from "./lib/platform.ts";
import { CHOICE_ANSWER, seedCourse } from "./lib/seed.ts";
import { errorCells, runLoad, type LoadResult } from "./lib/load.ts";
import { pgbench, pgbenchClientCap, type PgbenchResult } from "./lib/pgbench.ts";
import { printTable, writeResult, log } from "./lib/report.ts";
import { ratio } from "./lib/stats.ts";
import { summariseProfile } from "./lib/profile.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string" },
    connections: { type: "string" },
    students: { type: "string", default: "200" },
    quick: { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    warmup: { type: "string", default: "3" },
  },
});
const quick = values.quick!;
const DURATION = Number(values.duration ?? (quick ? 3 : 10));
const CONNECTIONS = (values.connections ?? (quick ? "16,64" : values.profile ? "64" : "16,64,256")).split(",").map(Number);
const STUDENTS = Number(values.students);
const SET = "bench-choice";

const db = await freshDatabase("ingest");
const prefix = queuePrefix("ingest");
const procs: Proc[] = [];
const start = async (p: Promise<Proc>) => {
  const proc = await p;
  procs.push(proc);
  return proc;
};
const stop = async (p: Proc) => {
  await p.stop();
  procs.splice(procs.indexOf(p), 1);
};

try {
  // Profiles are large: kept in a temporary folder (its path is printed), not in bench/results/.
  const profileDir = values.profile ? await mkdtemp(path.join(tmpdir(), "bench-profile-")) : "";
  const profArgs = values.profile ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : undefined;
  log("starting the API (rate limit off), cold: problems/ saved into an empty database");
  let api = await start(startPlatform("api-unlimited", "api", platformEnv(db, prefix, { RATE_LIMIT_PER_MIN: "0" }), profArgs));
  const startupCold = api.startupMs;
  log(`seeding ${STUDENTS} students`);
  const seeded = await seedCourse(api.url, { students: STUDENTS, problemSet: SET, upload: true });
  const path_ = `/v1/assignments/${seeded.assignmentId}/problems/pick/submissions`;
  const studentTokens = seeded.students.map((s) => s.token);
  const bare = values.profile
    ? null
    : await start(startProcess("bare-route", "bench/lib/bare-route.ts", [], { DATABASE_URL: db, QUEUE_PREFIX: `${prefix}-bare` }));

  // Both targets first take a short load that is not measured: JIT compilation, pools filling and each student's
  // first submission (its context read) are a process's start-up, not its rate.
  const WARMUP_S = Number(values.warmup);
  if (WARMUP_S > 0) {
    log(`warming up the API${bare ? " and the bare route" : ""} (${WARMUP_S} s each, not measured)`);
    const warm = { path: path_, body: CHOICE_ANSWER, connections: CONNECTIONS[0]!, duration: WARMUP_S, tokens: studentTokens };
    await runLoad({ url: api.url, ...warm });
    if (bare) await runLoad({ url: bare.url, ...warm, path: "/submit" });
  }

  const many: LoadResult[] = [];
  const bareRuns: LoadResult[] = [];
  const pg: PgbenchResult[] = [];
  for (const c of CONNECTIONS) {
    log(`(a) 200 students, ${c} connections`);
    many.push(await runLoad({ url: api.url, path: path_, body: CHOICE_ANSWER, connections: c, duration: DURATION, tokens: studentTokens }));
    if (!bare) continue;
    log(`bare route, ${c} connections`);
    bareRuns.push(
      await runLoad({ url: bare.url, path: "/submit", body: CHOICE_ANSWER, connections: c, duration: DURATION, tokens: studentTokens }),
    );
    // Capped below max_connections as it is now (the API's and bare route's pools, and other runs, hold some).
    const clients = Math.min(c, await pgbenchClientCap(db));
    log(`pgbench, ${clients} clients`);
    pg.push(
      await pgbench(db, clients, DURATION).catch((e: Error) => ({ clients, tps: NaN, latencyAvgMs: NaN, failed: NaN, error: e.message })),
    );
  }

  if (values.profile) {
    const loadEnded = performance.now();
    await stop(api);
    const shutdownMs = performance.now() - loadEnded;
    // One file per thread (CPU.<date>.<time>.<pid>.<thread>.<seq>); the event loop's is thread 0.
    const files = (await readdir(profileDir)).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f));
    const profile = path.join(profileDir, files[0]!);
    console.log(`CPU profile of the API: ${profile}`);
    const summary = await summariseProfile(profile, 15, { fromEndMs: shutdownMs + DURATION * 1000, toEndMs: shutdownMs });
    printTable(
      `API event loop: self time by package under ingest (a), ${CONNECTIONS[0]} connections (${summary.busyMs} ms busy of ${summary.totalMs} ms sampled)`,
      summary.packages,
    );
    printTable("API event loop: top self-time functions (share of busy time)", summary.functions);
    await writeResult("ingest-profile", { durationS: DURATION, load: many[0], profile: summary });
  } else {
    await stop(api);
    log("restarting the API with the default rate limit (warm start)");
    api = await start(startPlatform("api-default", "api", platformEnv(db, prefix)));
    const startupWarm = api.startupMs;
    const one: LoadResult[] = [];
    for (const [i, c] of CONNECTIONS.entries()) {
      // A different student per point: each starts with a fresh rate-limit window, as a burst would.
      log(`(b) one student, ${c} connections`);
      one.push(
        await runLoad({ url: api.url, path: path_, body: CHOICE_ANSWER, connections: c, duration: DURATION, tokens: [studentTokens[i]!] }),
      );
    }
    const row = (label: string, r: LoadResult, i: number) => ({
      case: label,
      conns: r.connections,
      "req/s": Math.round(r.reqPerSec),
      "p50 ms": r.p50,
      "p99 ms": r.p99,
      ...errorCells(r),
      "bare req/s": Math.round(bareRuns[i]!.reqPerSec),
      "bare p99 ms": bareRuns[i]!.p99,
      ratio: `${ratio(r.reqPerSec, bareRuns[i]!.reqPerSec).toFixed(2)}×`,
      "pgbench tps (clients)": `${Math.round(pg[i]!.tps)} (${pg[i]!.clients})`,
    });
    const table = printTable(`Ingest, ${DURATION} s per point (platform: npm run api; baselines in the same run)`, [
      ...many.map((r, i) => row(`(a) ${STUDENTS} students`, r, i)),
      ...one.map((r, i) => row("(b) one student", r, i)),
    ]);
    printTable("Startup to /readyz with problems/ loaded (target ≤ 2,000 ms)", [
      { start: "cold (empty database: every set saved)", ms: Math.round(startupCold) },
      { start: "warm (sets already stored)", ms: Math.round(startupWarm) },
    ]);
    const at64 = many.findIndex((r) => r.connections === 64);
    if (at64 >= 0) {
      const r = many[at64]!;
      const errs = r.server5xx + r.overloaded503 + r.contended409 + r.other409 + r.other4xx + r.limited429 + r.socketErrors + r.timeouts;
      console.log(
        `target (a) at 64: ≥ 50 % of bare route: ${ratio(r.reqPerSec, bareRuns[at64]!.reqPerSec) >= 0.5 ? "met" : "MISSED"}; ` +
          `p99 ≤ 50 ms: ${r.p99 <= 50 ? "met" : "MISSED"}; zero errors: ${errs === 0 ? "met" : "MISSED"}`,
      );
    }
    const b64 = one.find((r) => r.connections === 64);
    if (b64)
      console.log(
        `target (b) at 64: no 5xx and no SUBMISSION_CONTENDED: ${b64.server5xx + b64.overloaded503 + b64.contended409 === 0 ? "met" : "MISSED"}`,
      );
    await writeResult("ingest", {
      durationS: DURATION,
      students: STUDENTS,
      rateLimit: { manyStudents: "off (RATE_LIMIT_PER_MIN=0)", oneStudent: "platform default" },
      startup: { coldMs: startupCold, warmMs: startupWarm },
      manyStudents: many,
      oneStudent: one,
      bareRoute: bareRuns,
      pgbench: pg,
      table,
    });
  }
} finally {
  for (const p of [...procs]) await p.stop();
  await flushPrefix(prefix);
  await flushPrefix(`${prefix}-bare`);
}
