import { randomBytes } from "node:crypto";
import type { Worker } from "bullmq";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { buildApp } from "../../src/app.ts";
import { loadSetFromDirectory } from "../../src/catalog/index.ts";
import { loadConfig, type Config } from "../../src/config.ts";
import { createDb, type Db } from "../../src/db.ts";
import { createGradingQueue, type GradingQueue } from "../../src/grading/queue.ts";
import { startGradingWorker } from "../../src/grading/worker.ts";
import { createTestDatabase, dropTestDatabase, urlFor } from "./databases.ts";

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123456789";
const silent = { info() {}, warn() {}, error() {} };

export interface Harness {
  config: Config;
  db: Db;
  queue: GradingQueue;
  app: FastifyInstance;
  startWorker(overrides?: Partial<Config>): Worker;
  call(
    method: string,
    url: string,
    opts?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<LightMyRequestResponse>;
  loadSet(dir: string): Promise<void>;
  close(): Promise<void>;
}

/** A real app on its own database and queue prefix, with real workers on demand: nothing is mocked. */
export async function createHarness(name: string, overrides: Record<string, string> = {}): Promise<Harness> {
  const database = await createTestDatabase(name);
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: urlFor(database),
    QUEUE_PREFIX: `test-${name}-${randomBytes(4).toString("hex")}`,
    ADMIN_TOKEN,
    LOG_LEVEL: "silent",
    LOAD_PROBLEMS: "false",
    RATE_LIMIT_PER_MIN: "0",
    // Tests edit token rows directly and expect the next request to see it; tests/ingest.test.ts turns the cache on.
    AUTH_CACHE_TTL_S: "0",
    GRADING_BACKOFF_MS: "50",
    // The API and workers share this process, and test files run two at a time on a 2-core machine: a loaded
    // moment must not turn a functional test's request into 503 OVERLOADED. tests/backpressure.test.ts sets its own.
    PRESSURE_MAX_EVENT_LOOP_DELAY_MS: "0",
    ...overrides,
  });
  const db = createDb(config.DATABASE_URL);
  const queue = createGradingQueue(config);
  const app = await buildApp({ config, db, queue });
  const workers: Worker[] = [];

  return {
    config,
    db,
    queue,
    app,
    startWorker(extra = {}) {
      const w = startGradingWorker({ ...config, ...extra }, { db, problemSets: app.services.problemSets, queue }, silent);
      workers.push(w);
      return w;
    },
    call(method, url, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      return app.inject({ method: method as "GET", url, headers, payload: opts.body as object | undefined });
    },
    async loadSet(dir) {
      const loaded = await loadSetFromDirectory(dir);
      if (!loaded.ok) throw new Error(`fixture set ${dir} is invalid: ${JSON.stringify(loaded.errors)}`);
      await app.services.problemSets.save(loaded.set, "directory", null);
    },
    async close() {
      await Promise.all(workers.map((w) => w.close(true)));
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await app.close();
      await db.$disconnect();
      await dropTestDatabase(database);
    },
  };
}

export interface World {
  adminToken: string;
  courseId: string;
  instructor: { id: string; token: string };
  students: { id: string; token: string }[];
}

/** Admin token → users → course → enrollments → tokens, all through the HTTP API. */
export async function createWorld(h: Harness, opts: { students?: number; course?: string } = {}): Promise<World> {
  const course = opts.course ?? "dl-101";
  const expectStatus = async (res: LightMyRequestResponse, status: number) => {
    if (res.statusCode !== status) throw new Error(`expected ${status}, got ${res.statusCode}: ${res.body}`);
    return res.json();
  };
  const mkUser = async (email: string, token: string, role?: string) => {
    const u = await expectStatus(await h.call("POST", "/v1/users", { token, body: { email, name: email.split("@")[0], role } }), 201);
    const t = await expectStatus(await h.call("POST", `/v1/users/${u.id}/tokens`, { token, body: { name: "test" } }), 201);
    return { id: u.id as string, token: t.token as string };
  };
  // The bootstrap token retires once an admin exists, so the admin is created first and used from then on.
  const admin = await mkUser(`admin-${course}@example.org`, ADMIN_TOKEN, "admin");
  const instructor = await mkUser(`prof-${course}@example.org`, admin.token);
  const c = await expectStatus(await h.call("POST", "/v1/courses", { token: admin.token, body: { slug: course, title: course } }), 201);
  await expectStatus(
    await h.call("PUT", `/v1/courses/${c.id}/enrollments/${instructor.id}`, { token: admin.token, body: { role: "instructor" } }),
    200,
  );
  const students = [];
  for (let i = 0; i < (opts.students ?? 2); i++) {
    const s = await mkUser(`student${i}-${course}@example.org`, admin.token);
    await expectStatus(
      await h.call("PUT", `/v1/courses/${c.id}/enrollments/${s.id}`, { token: instructor.token, body: { role: "student" } }),
      200,
    );
    students.push(s);
  }
  return { adminToken: admin.token, courseId: c.id, instructor, students };
}

export async function createAssignment(h: Harness, w: World, body: Record<string, unknown>): Promise<string> {
  const res = await h.call("POST", `/v1/courses/${w.courseId}/assignments`, { token: w.instructor.token, body });
  if (res.statusCode !== 201) throw new Error(`assignment: ${res.statusCode} ${res.body}`);
  return res.json().id;
}

/** Asks the API until the submission leaves queued/running: each ask long-polls (?wait=), so no sleep between them. */
export async function waitForGrade(h: Harness, id: string, token: string, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const wait = Math.min(10, Math.max(0, (until - Date.now()) / 1000)).toFixed(2);
    const res = await h.call("GET", `/v1/submissions/${id}?wait=${wait}`, { token });
    const body = res.json();
    if (!["queued", "running"].includes(body.status)) return body;
    if (Date.now() > until) throw new Error(`submission ${id} still ${body.status} after ${timeoutMs} ms`);
  }
}
