import { Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gradeSubmission } from "../src/grading/grade-submission.ts";
import { enqueueGrading, jobIdFor, QUEUE_NAME, redisConnection } from "../src/grading/queue.ts";
import { claim } from "../src/grading/states.ts";
import { startGradingWorker } from "../src/grading/worker.ts";
import { recoverOnce } from "../src/jobs/outbox.ts";
import { threadPool } from "../src/grading/threads/index.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

let h: Harness;
let w: World;
let assignmentId: string;

async function submitQueued(answer: unknown = { selected: ["red"] }) {
  const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/single-choice/submissions`, {
    token: w.students[0]!.token,
    body: { answer },
  });
  expect(res.statusCode).toBe(202);
  return res.json().id as string;
}

const gradeDeps = () => ({
  db: h.db,
  problemSets: h.app.services.problemSets,
  modelRuntime: () => {
    throw new Error("these tests grade no models");
  },
  preflight: {},
  maxClaims: 6,
  leaseMs: 1000,
  timeoutMs: 5000,
  threads: threadPool(),
});
const ageSubmission = (id: string, ms: number) => h.db.submission.update({ where: { id }, data: { statusAt: new Date(Date.now() - ms) } });

beforeAll(async () => {
  // No worker runs until a test starts one, so jobs stay where the test puts them.
  h = await createHarness("reliability", { GRADING_LOCK_MS: "1000", GRADING_STALE_AFTER_S: "1" });
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  w = await createWorld(h, { students: 1 });
  assignmentId = await createAssignment(h, w, { problemSet: "grader-zoo" });
});
afterAll(() => h?.close());

describe("exactly one grade per run", () => {
  it("a job processed twice (even concurrently) writes one grade", async () => {
    const id = await submitQueued();
    const outcomes = await Promise.all([
      gradeSubmission(gradeDeps(), { submissionId: id, run: 1 }),
      gradeSubmission(gradeDeps(), { submissionId: id, run: 1 }),
    ]);
    expect(outcomes).toContain("graded");
    expect(await gradeSubmission(gradeDeps(), { submissionId: id, run: 1 })).toBe("skipped");
    expect(await h.db.grade.count({ where: { submissionId: id } })).toBe(1);
    const s = await h.db.submission.findUniqueOrThrow({ where: { id } });
    expect(s.status).toBe("graded");
  });

  it("a stale job for a superseded run is skipped, not graded", async () => {
    const id = await submitQueued();
    await h.db.submission.update({ where: { id }, data: { gradingRun: 2 } });
    expect(await gradeSubmission(gradeDeps(), { submissionId: id, run: 1 })).toBe("skipped");
    expect(await h.db.grade.count({ where: { submissionId: id } })).toBe(0);
  });
});

describe("the current grade", () => {
  it("is the latest run's, even when a superseded run finishes after the regrade", async () => {
    const id = await submitQueued();
    expect(await gradeSubmission(gradeDeps(), { submissionId: id, run: 1 })).toBe("graded");
    const regrade = await h.call("POST", `/v1/submissions/${id}/regrade`, { token: w.instructor.token });
    expect(regrade.json().run).toBe(2);
    expect(await gradeSubmission(gradeDeps(), { submissionId: id, run: 2 })).toBe("graded");
    // Run 1's late twin (a job still in flight when the regrade came) lands last, with another score.
    const first = await h.db.grade.findFirstOrThrow({ where: { submissionId: id, run: 1 } });
    await h.db.grade.update({ where: { id: first.id }, data: { score: 0, createdAt: new Date(Date.now() + 60_000) } });
    const view = (await h.call("GET", `/v1/submissions/${id}`, { token: w.instructor.token })).json();
    expect(view.score).toBe(2);
    expect(view.grades.map((g: { run: number }) => g.run)).toEqual([2, 1]);
  });
});

describe("nothing is lost", () => {
  it("a submission whose job vanished from Redis is graded after the outbox runs", async () => {
    const id = await submitQueued();
    await h.queue.obliterate({ force: true }); // as if Redis had been flushed
    expect(await h.queue.getJob(id)).toBeUndefined();
    await ageSubmission(id, 5000);
    expect(await recoverOnce(h.db, h.queue, { graceMs: 1000 })).toBeGreaterThanOrEqual(1);
    expect(await h.queue.getJob(id)).toBeDefined();
    // a second outbox loop right after finds the job live and leaves it alone
    expect(await recoverOnce(h.db, h.queue, { graceMs: 1000 })).toBe(0);
    const worker = h.startWorker();
    const graded = await waitForGrade(h, id, w.students[0]!.token);
    expect(graded).toMatchObject({ status: "graded", score: 2 });
    await worker.close();
  });

  it("a submission whose enqueue never happened (Redis down at submit) is graded after the outbox runs", async () => {
    const id = await submitQueued();
    await (await h.queue.getJob(id))!.remove();
    await ageSubmission(id, 5000);
    await recoverOnce(h.db, h.queue, { graceMs: 1000 });
    const worker = h.startWorker();
    expect(await waitForGrade(h, id, w.students[0]!.token)).toMatchObject({ status: "graded" });
    await worker.close();
  });

  it("a worker killed mid-grade leaves nothing stuck: the job is taken again and graded once", async () => {
    const id = await submitQueued();
    // A worker takes the job and claims the submission, then dies without finishing or releasing its lock.
    const doomed = new Worker(QUEUE_NAME, null, {
      connection: redisConnection(h.config),
      prefix: h.config.QUEUE_PREFIX,
      lockDuration: 1000,
    });
    const job = await doomed.getNextJob("doomed-token");
    expect(job?.id).toBe(jobIdFor({ submissionId: id, run: 1 }));
    const lease = await claim(h.db, { submissionId: id, run: 1 }, "doomed-holder", 1000);
    expect(lease).not.toBeNull();
    await doomed.close(true);
    expect((await h.db.submission.findUniqueOrThrow({ where: { id } })).status).toBe("running");

    // A live worker's stalled-job check finds the dead lock, hands the run back, and grades the job.
    const logged: string[] = [];
    const log = { info() {}, warn: (_: object, msg: string) => logged.push(msg), error: (_: object, msg: string) => logged.push(msg) };
    const worker = startGradingWorker(h.config, { db: h.db, problemSets: h.app.services.problemSets, queue: h.queue }, log);
    try {
      expect(await waitForGrade(h, id, w.students[0]!.token, 20_000)).toMatchObject({ status: "graded", score: 2 });
      expect(await h.db.grade.count({ where: { submissionId: id } })).toBe(1);
      const s = await h.db.submission.findUniqueOrThrow({ where: { id } });
      expect(s.claims).toBe(2);
      expect(s.claimedBy).toBeNull();
      expect(logged).toContain("job stalled: its worker stopped responding");
      expect(logged.filter((m) => /failed/.test(m))).toEqual([]);
    } finally {
      await worker.close();
    }
  });

  it("a run that keeps killing workers ends `failed` and visible to staff, never stuck", async () => {
    const id = await submitQueued();
    await h.db.submission.update({ where: { id }, data: { claims: 6 } }); // as if six workers had died on it
    await enqueueGrading(h.queue, { submissionId: id, run: 1 }); // no-op: the job is already queued
    const worker = h.startWorker();
    const body = (await waitForGrade(h, id, w.instructor.token)) as { status: string; lastError: string };
    expect(body.status).toBe("failed");
    expect(body.lastError).toMatch(/without finishing/);
    await worker.close();
  });
});
