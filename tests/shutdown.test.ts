import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";
import { freePort } from "./helpers/ports.ts";

/**
 * SIGTERM of real processes (`tsx src/main.ts all|worker`) on the test's database and queue, while a slow
 * grade runs: it finishes within SHUTDOWN_GRACE_S, or is handed back and graded by another worker; the process
 * exits 0 and no run is left `running` with a lease.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let h: Harness;
let w: World;
let assignmentId: string;
let dir: string;

beforeAll(async () => {
  h = await createHarness("shutdown");
  w = await createWorld(h, { students: 2 });
  dir = await mkdtemp(path.join(tmpdir(), "shutdown-"));
  await mkdir(path.join(dir, "slow-set", "slow"), { recursive: true });
  await writeFile(path.join(dir, "slow-set", "set.yaml"), "slug: slow-set\ntitle: Slow\nproblems: [slow]\n");
  // Each sample sums a million ones: the grade takes seconds, long enough to signal the worker during it.
  await writeFile(
    path.join(dir, "slow-set", "slow", "problem.yaml"),
    'title: Slow\npoints: 1\nstatement: Write x.\ngrader:\n  type: expression\n  answer: "x + 0 * sum(ones(1000, 1000))"\n  variables: { x: { min: 1, max: 2 } }\n  samples: 30\n',
  );
  await h.loadSet(path.join(dir, "slow-set"));
  assignmentId = await createAssignment(h, w, { problemSet: "slow-set", maxAttempts: 10 });
}, 60_000);
afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function start(mode: "all" | "worker", env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", mode], {
    env: {
      ...process.env,
      DATABASE_URL: h.config.DATABASE_URL,
      QUEUE_PREFIX: h.config.QUEUE_PREFIX,
      ADMIN_TOKEN: h.config.ADMIN_TOKEN,
      LOAD_PROBLEMS: "false",
      LOG_LEVEL: "warn",
      WORKER_METRICS_PORT: "0",
      GRADER_TIMEOUT_S: "120",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const killer = setTimeout(() => child.kill("SIGKILL"), 150_000);
  return { child, output: () => out, exited: exited.finally(() => clearTimeout(killer)) };
}

async function submit(student: number): Promise<string> {
  const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/slow/submissions`, {
    token: w.students[student]!.token,
    body: { answer: { expression: "x" } },
  });
  expect(res.statusCode).toBe(202);
  return res.json().id;
}

async function waitUntilRunning(id: string, output: () => string, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  while ((await h.db.submission.findUniqueOrThrow({ where: { id } })).status !== "running") {
    if (Date.now() > until) throw new Error(`submission ${id} never started grading; process said:\n${output()}`);
    await sleep(50);
  }
}

describe("graceful shutdown", { timeout: 180_000 }, () => {
  it("SIGTERM of `all` during a grade: the API stops accepting, the grade finishes, exit 0, nothing leased", async () => {
    const port = await freePort();
    const p = start("all", { PORT: String(port), HOST: "127.0.0.1", SHUTDOWN_GRACE_S: "90" });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const up = await fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (i > 600) throw new Error(`the API never came up:\n${p.output()}`);
      await sleep(100);
    }
    const id = await submit(0);
    await waitUntilRunning(id, p.output);

    p.child.kill("SIGTERM");
    await sleep(1000);
    // Closed for new connections while the grade still runs.
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    expect((await h.db.submission.findUniqueOrThrow({ where: { id } })).status).toBe("running");

    expect(await p.exited).toBe(0);
    const s = await h.db.submission.findUniqueOrThrow({ where: { id }, include: { grades: true } });
    expect(s).toMatchObject({ status: "graded", claimedBy: null, leaseUntil: null });
    expect(s.grades).toHaveLength(1);
    expect(s.grades[0]!.score).toBe(1);
    expect(p.output()).toMatch(/SIGTERM: shutting down/);
    expect(p.output()).not.toMatch(/failed to start|released/);
  });

  it("SIGTERM of a worker whose grade outlasts SHUTDOWN_GRACE_S: the run goes back to the queue, another worker grades it once", async () => {
    const metricsPort = await freePort();
    const p = start("worker", {
      SHUTDOWN_GRACE_S: "1",
      GRADING_LOCK_MS: "2000",
      WORKER_METRICS_PORT: String(metricsPort),
      HOST: "127.0.0.1",
    });
    const id = await submit(1);
    await waitUntilRunning(id, p.output);
    // The worker's own /metrics shows the queue as the API's does: the job it holds is active, none waits.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^autograder_grading_queue_jobs\{state="active"\} 1$/m);
    expect(metrics).toMatch(/^autograder_grading_queued_submissions 0$/m);
    expect(metrics).toMatch(/^autograder_grading_oldest_queued_seconds 0$/m);
    const signalled = Date.now();
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(20_000);
    expect(p.output()).toMatch(/1 grade\(s\) handed back to the queue/);
    const released = await h.db.submission.findUniqueOrThrow({ where: { id }, include: { grades: true } });
    expect(released).toMatchObject({ status: "queued", claimedBy: null, leaseUntil: null });
    expect(released.grades).toHaveLength(0);

    // Another worker retakes the job once the stopped worker's lock on it lapses.
    h.startWorker({ GRADING_LOCK_MS: 2000, GRADER_TIMEOUT_S: 120 });
    const graded = await waitForGrade(h, id, w.students[1]!.token, 120_000);
    expect(graded).toMatchObject({ status: "graded", score: 1 });
    const s = await h.db.submission.findUniqueOrThrow({ where: { id }, include: { grades: true } });
    expect(s.grades).toHaveLength(1);
    expect(s).toMatchObject({ claimedBy: null, leaseUntil: null });
  });
});
