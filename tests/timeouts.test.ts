import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { threadPool } from "../src/grading/threads/index.ts";
import { multipart } from "./helpers/bundles.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

/**
 * Item 3 of the security issue: every run has a wall-clock budget (GRADER_TIMEOUT_S = 2 here), and
 * when it is spent nothing of the run keeps going. The sandbox's own per-request limit
 * (MODEL_TIMEOUT_S) is set far above the budget, so only the run's AbortSignal can stop the model.
 */
const BUDGET_MS = 2000;
/** Killing a child or a thread and writing the grade, on a shared 2-core machine. */
const MARGIN_MS = 1500;

let h: Harness;
let w: World;
let setDir: string;
let slowAssignment: string;
let modelAssignment: string;

/** An expression grader whose reference is legitimately slow (a 1000×1000 matrix per sample, within the element limit). */
const SLOW_SET = {
  "set.yaml": "slug: slow-grading\ntitle: Slow grading\nproblems: [slow, quick]\n",
  "slow/problem.yaml": `title: Slow reference
points: 1
statement: Write x.
grader:
  type: expression
  answer: "x + 0 * sum(ones(1000, 1000))"
  variables: { x: { min: 1, max: 2 } }
  samples: 1000
`,
  "quick/problem.yaml": "title: Quick\npoints: 1\nstatement: 6 times 7?\ngrader:\n  type: numeric\n  answer: 42\n",
};

beforeAll(async () => {
  h = await createHarness("timeouts", {
    GRADER_TIMEOUT_S: String(BUDGET_MS / 1000),
    MODEL_TIMEOUT_S: "60",
    WORKER_CONCURRENCY: "3",
    GRADER_THREADS: "2",
    SANDBOX_POOL_SIZE: "3",
    GRADER_EXECUTION_PROVIDERS: "cpu",
  });
  setDir = join(await mkdtemp(join(tmpdir(), "timeouts-")), "slow-grading");
  for (const [path, text] of Object.entries(SLOW_SET)) {
    await mkdir(join(setDir, path, ".."), { recursive: true });
    await writeFile(join(setDir, path), text);
  }
  await h.loadSet(setDir);
  await h.loadSet("tests/fixtures/sets/onnx-hostile");
  h.startWorker();
  w = await createWorld(h, { students: 2 });
  slowAssignment = await createAssignment(h, w, { problemSet: "slow-grading" });
  modelAssignment = await createAssignment(h, w, { problemSet: "onnx-hostile" });
  // Boot the grader threads, so that what is timed below is the budget and not a thread's start.
  await Promise.all([0, 1].map(() => submitQuick(1).then((id) => waitForGrade(h, id, w.students[1]!.token, 60_000))));
}, 120_000);
afterAll(async () => {
  await h?.close();
  if (setDir) await rm(join(setDir, ".."), { recursive: true, force: true });
});

async function submitQuick(student: number): Promise<string> {
  const res = await h.call("POST", `/v1/assignments/${slowAssignment}/problems/quick/submissions`, {
    token: w.students[student]!.token,
    body: { answer: { value: 42 } },
  });
  expect(res.statusCode, res.body).toBe(202);
  return res.json().id;
}

/** While `slowId` runs, another student's answers are graded: the stuck run holds neither the worker nor the pool. */
async function othersGradedMeanwhile(slowId: string) {
  const ids = [await submitQuick(1), await submitQuick(1)];
  const graded = await Promise.all(ids.map((id) => waitForGrade(h, id, w.students[1]!.token, 10_000)));
  expect(graded.map((g) => g.status)).toEqual(["graded", "graded"]);
  const slow = await h.db.submission.findUniqueOrThrow({ where: { id: slowId } });
  if (slow.gradedAt) for (const g of graded) expect(new Date(g.gradedAt).getTime()).toBeLessThan(slow.gradedAt.getTime());
}

async function staffView(id: string) {
  const res = await h.call("GET", `/v1/submissions/${id}`, { token: w.instructor.token });
  expect(res.statusCode).toBe(200);
  return res.json();
}

/** Descendant processes of this test process, with their CPU ticks so far. */
async function descendants(): Promise<Map<number, number>> {
  const parent = new Map<number, { ppid: number; ticks: number }>();
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields.length > 13) parent.set(Number(name), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
  }
  const out = new Map<number, number>();
  const walk = (pid: number) => {
    for (const [child, p] of parent) {
      if (p.ppid !== pid || out.has(child)) continue;
      out.set(child, p.ticks);
      walk(child);
    }
  };
  walk(process.pid);
  return out;
}

describe("a grading run over its budget", () => {
  it("a student's endless model ends `rejected` MODEL_TIMEOUT within the budget, and its child is gone", async () => {
    const res = await h.app.inject({
      method: "POST",
      url: `/v1/assignments/${modelAssignment}/problems/double/submissions`,
      headers: { authorization: `Bearer ${w.students[0]!.token}` },
      payload: multipart(
        "model",
        "loop.onnx",
        await readFile("tests/fixtures/onnx/hostile/endless_loop.onnx"),
        "application/octet-stream",
      ) as any,
    });
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json().id;
    await othersGradedMeanwhile(id);

    const done = await waitForGrade(h, id, w.students[0]!.token, 20_000);
    expect(done).toMatchObject({ status: "rejected", score: 0 });
    expect(done.feedback.summary).toMatch(/MODEL_TIMEOUT/);
    expect(await staffView(id)).toMatchObject({ status: "rejected", lastErrorCode: "MODEL_TIMEOUT" });
    const grade = await h.db.grade.findFirstOrThrow({ where: { submissionId: id } });
    expect(grade.durationMs).toBeGreaterThanOrEqual(BUDGET_MS);
    expect(grade.durationMs).toBeLessThan(BUDGET_MS + MARGIN_MS);

    // The endless Loop spun a core; now no process under this one is busy (idle pool children may remain).
    const before = await descendants();
    await new Promise((r) => setTimeout(r, 1000));
    const after = await descendants();
    for (const [pid, ticks] of after) expect(ticks - (before.get(pid) ?? 0), `process ${pid} still busy`).toBeLessThan(30);
  }, 60_000);

  it("a grader stuck on the problem's own logic ends `failed` GRADER_TIMEOUT within the budget, its thread terminated, not retried", async () => {
    const threadsBefore = threadPool().threadIds;
    const res = await h.call("POST", `/v1/assignments/${slowAssignment}/problems/slow/submissions`, {
      token: w.students[0]!.token,
      body: { answer: { expression: "x" } },
    });
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json().id;
    await othersGradedMeanwhile(id);

    const done = await waitForGrade(h, id, w.students[0]!.token, 20_000);
    expect(done.status).toBe("failed");
    const staff = await staffView(id);
    expect(staff).toMatchObject({ status: "failed", lastErrorCode: "GRADER_TIMEOUT" });
    expect(staff.lastError).toMatch(/did not finish within its 2 s budget/);
    const grades = await h.db.grade.findMany({ where: { submissionId: id } });
    expect(grades).toHaveLength(1);
    expect(grades[0]!.durationMs).toBeGreaterThanOrEqual(BUDGET_MS);
    expect(grades[0]!.durationMs).toBeLessThan(BUDGET_MS + MARGIN_MS);

    // The thread that ran it was terminated (piscina starts a fresh one in its place).
    const threadsAfter = threadPool().threadIds;
    expect(threadsBefore.filter((t) => !threadsAfter.includes(t))).toHaveLength(1);
    // A deterministic timeout is not an infrastructure failure: no retry claims the run again.
    await new Promise((r) => setTimeout(r, 500));
    expect(await h.db.submission.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: "failed", claims: 1 });
  }, 60_000);
});
