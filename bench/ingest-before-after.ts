/**
 * The ingest path before and after a change, in one run on one machine: the API of an earlier commit (extracted with
 * `git archive`) and of this tree, each its own `tsx src/main.ts api` process on the same fresh database, against the
 * bare route (raw INSERT + queue.add) measured in between. Cases at --connections (default 64), --duration s each:
 *   (a) 200 students, tokens rotated, RATE_LIMIT_PER_MIN=0;  (b) one student, the default rate limit (429s expected).
 * --profile: both (a) APIs under --cpu-prof; prints where their busy time goes.
 *
 *   npx tsx bench/ingest-before-after.ts -- --before <commit> [--duration 10 --connections 64 --profile]
 */
import { execSync } from "node:child_process";
import { cp, mkdir, readdir, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { ADMIN_TOKEN, flushPrefix, freshDatabase, queuePrefix, REDIS_URL, startProcess, type Proc } from "./lib/platform.ts";
import { CHOICE_ANSWER, seedCourse } from "./lib/seed.ts";
import { errorCells, runLoad, type LoadResult } from "./lib/load.ts";
import { printTable, writeResult, log } from "./lib/report.ts";
import { summariseProfile } from "./lib/profile.ts";

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    students: { type: "string", default: "200" },
    profile: { type: "boolean", default: false },
  },
});
if (!values.before) throw new Error("--before <commit> is required");
const DURATION = Number(values.duration);
const CONNS = Number(values.connections);
const before = execSync(`git rev-parse --short ${values.before}`).toString().trim();
const after = `${execSync("git rev-parse --short HEAD").toString().trim()}+tree`;

// The earlier commit's sources beside this tree's node_modules and generated client (the schema is the same).
const oldTree = path.resolve(`bench/results/.before-${before}`);
await rm(oldTree, { recursive: true, force: true });
await mkdir(oldTree, { recursive: true });
execSync(`git archive ${before} src graders package.json tsconfig.json | tar -x -C ${oldTree}`);
await symlink(path.resolve("node_modules"), path.join(oldTree, "node_modules"));
await cp("src/generated", path.join(oldTree, "src/generated"), { recursive: true });

const db = await freshDatabase("ingest_before_after");
const prefix = queuePrefix("ingest-ba");
const profileDir = path.resolve("bench/results/profiles-before-after");
await rm(profileDir, { recursive: true, force: true });
await mkdir(profileDir, { recursive: true });
const procs: Proc[] = [];
const api = async (name: string, root: string, extra: Record<string, string>, profile: boolean) => {
  const env = { DATABASE_URL: db, REDIS_URL, QUEUE_PREFIX: prefix, ADMIN_TOKEN, LOAD_PROBLEMS: "false", LOG_LEVEL: "warn", ...extra };
  const args = profile ? ["--cpu-prof", `--cpu-prof-dir=${path.join(profileDir, name)}`] : [];
  const p = await startProcess(name, path.join(root, "src/main.ts"), ["api"], env, { extraNodeArgs: args });
  procs.push(p);
  return p;
};

try {
  const unlimited = { RATE_LIMIT_PER_MIN: "0" };
  const apiBefore = await api("before", oldTree, unlimited, values.profile!);
  const apiAfter = await api("after", process.cwd(), unlimited, values.profile!);
  log(`seeding ${values.students} students`);
  const seeded = await seedCourse(apiAfter.url, { students: Number(values.students), problemSet: "bench-choice", upload: true });
  const route = `/v1/assignments/${seeded.assignmentId}/problems/pick/submissions`;
  const tokens = seeded.students.map((s) => s.token);
  const bare = await startProcess("bare-route", "bench/lib/bare-route.ts", [], { DATABASE_URL: db, QUEUE_PREFIX: `${prefix}-bare` });
  procs.push(bare);
  const load = (url: string, p: string, t: string[]) =>
    runLoad({ url, path: p, body: CHOICE_ANSWER, connections: CONNS, duration: DURATION, tokens: t });

  const rows: { case: string; r: LoadResult }[] = [];
  // Warm both (JIT, pools, caches) for a second before measuring.
  for (const p of [apiBefore, apiAfter])
    await runLoad({ url: p.url, path: route, body: CHOICE_ANSWER, connections: 8, duration: 1, tokens });
  log(`(a) before ${before}`);
  rows.push({ case: `(a) ${tokens.length} students, before (${before})`, r: await load(apiBefore.url, route, tokens) });
  log("bare route");
  rows.push({ case: "bare route (INSERT + queue.add)", r: await load(bare.url, "/submit", tokens) });
  log(`(a) after ${after}`);
  rows.push({ case: `(a) ${tokens.length} students, after (${after})`, r: await load(apiAfter.url, route, tokens) });
  const profiles: Record<string, unknown> = {};
  for (const p of [apiBefore, apiAfter]) {
    await p.stop();
    if (!values.profile) continue;
    const dir = path.join(profileDir, p.name);
    const file = (await readdir(dir)).find((f) => f.endsWith(".cpuprofile"));
    if (!file) continue;
    const s = await summariseProfile(path.join(dir, file), 12);
    profiles[p.name] = s;
    printTable(`${p.name}: API self time by package, (a) at ${CONNS} connections (total ${s.totalMs} ms sampled)`, s.packages);
  }
  // (b): one student's token, the default rate limit (600 a minute): 429s with Retry-After are the configured answer.
  const one = [tokens[tokens.length - 1]!];
  for (const [name, root] of [
    ["before-b", oldTree],
    ["after-b", process.cwd()],
  ] as const) {
    const p = await api(name, root, {}, false);
    log(`(b) ${name}`);
    rows.push({
      case: `(b) one student, ${name === "before-b" ? `before (${before})` : `after (${after})`}`,
      r: await load(p.url, route, one),
    });
    await p.stop();
  }
  const bareRate = rows[1]!.r.reqPerSec;
  const table = printTable(`Ingest before/after, ${CONNS} connections, ${DURATION} s each (one run, one machine)`, [
    ...rows.map(({ case: c, r }) => ({
      case: c,
      "req/s": Math.round(r.reqPerSec),
      "p50 ms": r.p50,
      "p99 ms": r.p99,
      "of bare": `${((100 * r.reqPerSec) / bareRate).toFixed(0)} %`,
      ...errorCells(r),
    })),
  ]);
  await writeResult("ingest-before-after", { before, after, connections: CONNS, durationS: DURATION, rows, profiles, table });
} finally {
  for (const p of procs) await p.stop().catch(() => undefined);
  await flushPrefix(prefix);
  await flushPrefix(`${prefix}-bare`);
  await rm(oldTree, { recursive: true, force: true });
}
