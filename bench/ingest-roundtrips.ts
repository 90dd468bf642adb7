/**
 * Round trips per submission on the ingest path, counted at the wire: every pg Client.query (Prisma's adapter-pg and
 * any pool of our own go through it) and every Redis command (BullMQ and the rate limiter use ioredis). The app is
 * built in this process as `npm run api` builds it (buildApp, default config, rate limit on), on a fresh database;
 * a few warm-up submissions fill the caches, then N submissions by distinct students are counted, one at a time.
 *
 *   npm run bench:ingest-roundtrips [-- --n 50]
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { Redis } from "ioredis";
import { buildApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createDb } from "../src/db.ts";
import { createGradingQueue } from "../src/grading/queue.ts";
import { ADMIN_TOKEN, flushPrefix, freshDatabase, queuePrefix } from "./lib/platform.ts";
import { printTable, writeResult } from "./lib/report.ts";
import { choiceBundle } from "../tests/helpers/set-bundles.ts";
import { multipart } from "../tests/helpers/bundles.ts";

const { values } = parseArgs({ options: { n: { type: "string", default: "50" } } });
const N = Number(values.n);

const counts = { pg: 0, redis: 0 };
const counted = new Map<string, number>();
const pgQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  counts.pg++;
  const text = typeof args[0] === "string" ? args[0] : ((args[0] as { text?: string })?.text ?? "?");
  const key = text.replace(/\s+/g, " ").slice(0, 70);
  counted.set(key, (counted.get(key) ?? 0) + 1);
  return (pgQuery as (...a: unknown[]) => unknown).apply(this, args);
} as typeof pgQuery;
const sendCommand = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function (this: Redis, ...args: Parameters<typeof sendCommand>) {
  counts.redis++;
  return sendCommand.apply(this, args);
};

const db = await freshDatabase("roundtrips");
const prefix = queuePrefix("roundtrips");
const config = loadConfig({
  ...process.env,
  DATABASE_URL: db,
  QUEUE_PREFIX: prefix,
  ADMIN_TOKEN,
  LOG_LEVEL: "silent",
  LOAD_PROBLEMS: "false",
});
const prisma = createDb(config.DATABASE_URL);
const queue = createGradingQueue(config);
const app = await buildApp({ config, db: prisma, queue });
try {
  const call = async (method: string, url: string, token: string, body?: unknown) => {
    const res = await app.inject({
      method: method as "POST",
      url,
      headers: { authorization: `Bearer ${token}` },
      payload: body as object,
    });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const user = async (email: string, token: string, role?: string) => {
    const u = await call("POST", "/v1/users", token, { email, name: email.split("@")[0], role });
    return { id: u.id as string, token: (await call("POST", `/v1/users/${u.id}/tokens`, token, { name: "b" })).token as string };
  };
  const admin = await user("admin-rt@example.org", ADMIN_TOKEN, "admin");
  const prof = await user("prof-rt@example.org", admin.token);
  const course = await call("POST", "/v1/courses", admin.token, { slug: "rt", title: "rt" });
  await call("PUT", `/v1/courses/${course.id}/enrollments/${prof.id}`, admin.token, { role: "instructor" });
  const form = multipart("bundle", "set.tar.gz", await choiceBundle("rt-choice", { correct: ["red"] }));
  await call("POST", "/v1/problem-sets", prof.token, form);
  const students = [];
  for (let i = 0; i < N + 5; i++) {
    const s = await user(`s${i}-rt@example.org`, admin.token);
    await call("PUT", `/v1/courses/${course.id}/enrollments/${s.id}`, prof.token, { role: "student" });
    students.push(s);
  }
  const a = await call("POST", `/v1/courses/${course.id}/assignments`, prof.token, { problemSet: "rt-choice", title: "rt" });
  const url = `/v1/assignments/${a.id}/problems/pick/submissions`;
  const submit = (s: { token: string }) => call("POST", url, s.token, { answer: { selected: ["red"] } });
  // Warm-up: each counted student has made one request before (their token is known), as in a running exam.
  for (const s of students) await call("GET", "/v1/me", s.token);
  for (const s of students.slice(0, 5)) await submit(s);
  counts.pg = counts.redis = 0;
  counted.clear();
  for (const s of students.slice(5)) await submit(s);
  const perSub = { pg: counts.pg / N, redis: counts.redis / N };
  printTable(`Round trips per submission (${N} submissions, warm)`, [
    { "Postgres queries": perSub.pg.toFixed(2), "Redis commands": perSub.redis.toFixed(2), total: (perSub.pg + perSub.redis).toFixed(2) },
  ]);
  const byText = [...counted.entries()].sort((x, y) => y[1] - x[1]).map(([sql, n]) => ({ "per submission": (n / N).toFixed(2), sql }));
  printTable("Postgres statements", byText);
  await writeResult("ingest-roundtrips", { n: N, perSubmission: perSub, statements: byText });
} finally {
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await app.close();
  await prisma.$disconnect();
  await flushPrefix(prefix);
}
