import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jobIdFor } from "../src/grading/queue.ts";
import { claim, release } from "../src/grading/states.ts";
import { gradingKind } from "../src/jobs/grading.ts";
import { recoverOnce } from "../src/jobs/outbox.ts";
import { assertRegistry, findKind, JOB_KINDS, type AnyJobKind } from "../src/jobs/registry.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

let h: Harness;
let w: World;
let assignmentId: string;

beforeAll(async () => {
  h = await createHarness("jobs", { GRADING_LOCK_MS: "1000", GRADING_STALE_AFTER_S: "1" });
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  w = await createWorld(h, { students: 1 });
  assignmentId = await createAssignment(h, w, { problemSet: "grader-zoo" });
});
afterAll(() => h?.close());

async function submitQueued() {
  const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/single-choice/submissions`, {
    token: w.students[0]!.token,
    body: { answer: { selected: ["red"] } },
  });
  expect(res.statusCode).toBe(202);
  return res.json().id as string;
}

async function waitForJobState(jobId: string, states: string[], timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const job = await h.queue.getJob(jobId);
    const state = job ? await job.getState() : "missing";
    if (states.includes(state)) return job!;
    if (Date.now() > until) throw new Error(`job ${jobId} still ${state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const graceMs = 0;

describe("the registry", () => {
  it("declares grading, and every kind is runnable", () => {
    expect(findKind("grade")).toBe(gradingKind);
    expect(() => assertRegistry(JOB_KINDS)).not.toThrow();
  });

  it("refuses at boot a kind without a handler, or two kinds with one name", () => {
    const { handle: _handle, ...noHandler } = gradingKind;
    expect(() => assertRegistry([noHandler as unknown as AnyJobKind])).toThrow(/'grade' is not runnable: no handler/);
    expect(() => assertRegistry([gradingKind, { ...gradingKind }])).toThrow(/a name another kind has/);
  });

  it("a job of an unknown kind, or with a payload not its kind's, fails at once without retries", async () => {
    const worker = h.startWorker();
    await h.queue.add("bogus", { submissionId: "00000000-0000-4000-8000-000000000000", run: 1 }, { jobId: "bogus-1", attempts: 3 });
    await h.queue.add("grade", { submissionId: "not-a-uuid", run: 1 }, { jobId: "bad-payload", attempts: 3 });
    const bogus = await waitForJobState("bogus-1", ["failed"]);
    expect(bogus.failedReason).toMatch(/Unknown job kind 'bogus'; known: grade/);
    expect(bogus.attemptsMade).toBe(1);
    const bad = await waitForJobState("bad-payload", ["failed"]);
    expect(bad.failedReason).toMatch(/invalid payload/);
    expect(bad.attemptsMade).toBe(1);
    await worker.close();
  });
});

describe("the outbox", () => {
  it("recovers a grading job Redis lost, and leaves a live one alone", async () => {
    await h.queue.pause();
    try {
      const id = await submitQueued();
      expect(await recoverOnce(h.db, h.queue, { graceMs })).toBe(0); // its job is waiting: live
      await (await h.queue.getJob(id))!.remove();
      expect(await recoverOnce(h.db, h.queue, { graceMs })).toBe(1);
      expect(await h.queue.getJob(id)).toBeDefined();
      expect(await recoverOnce(h.db, h.queue, { graceMs })).toBe(0); // recovered once, then live again
    } finally {
      await h.queue.resume();
    }
  });

  it("waits for a released run's backoff, and takes a running run once its lease has passed", async () => {
    await h.queue.pause();
    try {
      const id = await submitQueued();
      await (await h.queue.getJob(id))!.remove();
      const ref = { submissionId: id, run: 1 };
      const lease = (await claim(h.db, ref, "dead-worker", 60_000))!;
      expect(await recoverOnce(h.db, h.queue, { graceMs })).toBe(0); // a live lease: its holder is grading
      await h.db.submission.update({ where: { id }, data: { leaseUntil: new Date(Date.now() - 1) } });
      expect(await recoverOnce(h.db, h.queue, { graceMs })).toBe(1); // the holder died: enqueued again
      await (await h.queue.getJob(id))!.remove();
      // Back off (as a worker does on an infrastructure error): not before availableAt.
      const again = (await claim(h.db, ref, "worker-2", 60_000))!;
      expect(again.claims).toBe(lease.claims + 1);
      expect(await release(h.db, again, again.holder, "redis away", 60_000)).toBe(true);
      expect(await recoverOnce(h.db, h.queue, { graceMs })).toBe(0);
      await h.db.submission.update({ where: { id }, data: { availableAt: new Date(Date.now() - 1) } });
      expect(await recoverOnce(h.db, h.queue, { graceMs })).toBe(1);
    } finally {
      await h.queue.resume();
    }
  });
});

describe("delivery", () => {
  it("the same job delivered twice grades once", async () => {
    await h.queue.pause();
    const id = await submitQueued();
    // A second copy of the same run's job under another id: what a redelivery after a lost ack looks like.
    await h.queue.add("grade", { submissionId: id, run: 1 }, { jobId: `${id}-dup` });
    await h.queue.resume();
    const worker = h.startWorker({ WORKER_CONCURRENCY: 2 });
    expect(await waitForGrade(h, id, w.students[0]!.token)).toMatchObject({ status: "graded", score: 2 });
    await waitForJobState(`${id}-dup`, ["completed"]);
    await waitForJobState(jobIdFor({ submissionId: id, run: 1 }), ["completed"]);
    expect(await h.db.grade.count({ where: { submissionId: id } })).toBe(1);
    await worker.close();
  });

  it("two workers cannot both run one submission: the second waits while the first's lease lives", async () => {
    await h.queue.pause();
    const id = await submitQueued();
    const held = (await claim(h.db, { submissionId: id, run: 1 }, "other-worker", 1500))!;
    await h.queue.resume();
    const worker = h.startWorker();
    // The job is put back until the lease passes, not graded beside the holder.
    await waitForJobState(id, ["delayed"]);
    expect(await h.db.grade.count({ where: { submissionId: id } })).toBe(0);
    expect((await h.db.submission.findUniqueOrThrow({ where: { id } })).claimedBy).toBe(held.holder);
    // The holder never finishes (it died): after its lease the waiting job takes the run and grades it, once.
    expect(await waitForGrade(h, id, w.students[0]!.token)).toMatchObject({ status: "graded", score: 2 });
    const s = await h.db.submission.findUniqueOrThrow({ where: { id } });
    expect(s.claims).toBe(2);
    expect(await h.db.grade.count({ where: { submissionId: id } })).toBe(1);
    await worker.close();
  });
});
