import type { Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recoverOnce } from "../src/jobs/outbox.ts";
import { createItems } from "../src/services/gradebook/regrade-run.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";
import { keyedSet, waitForRegrade } from "./helpers/regrade-sets.ts";
import { uploadBundle } from "./helpers/set-bundles.ts";

/**
 * Pinned revisions and regrades, end to end with real workers: revision 1 says `red` and π, revision 2
 * says `dog` and e, so moving the assignment and regrading changes known scores, which the report must
 * list exactly, old → new.
 */

const silent = { info() {}, warn() {}, error() {} };
/** A grader thread's first start (tsx, grader modules) is slow on a loaded machine. */
const FIRST_GRADE_MS = 60_000;
const PI = 3.14159;
const E = 2.71828;

let h: Harness;
let w: World;
let assignmentId: string;
let worker: Worker;
const sub: Record<string, string> = {};

const token = () => w.instructor.token;
const name = (i: number) => `student${i}-dl-101`;

async function submit(student: number, problem: string, answer: unknown) {
  const s = w.students[student]!;
  const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/${problem}/submissions`, { token: s.token, body: { answer } });
  expect(res.statusCode, res.body).toBe(202);
  await waitForGrade(h, res.json().id, s.token, FIRST_GRADE_MS);
  return res.json().id as string;
}

const revisionOf = async (submissionId: string) =>
  (await h.db.submission.findUniqueOrThrow({ where: { id: submissionId }, include: { problem: { include: { revision: true } } } })).problem
    .revision.revision;

beforeAll(async () => {
  h = await createHarness("regrade");
  w = await createWorld(h, { students: 3 });
  expect((await uploadBundle(h, w.instructor.token, await keyedSet("keyed", { pick: "red", num: PI }))).statusCode).toBe(201);
  assignmentId = await createAssignment(h, w, { problemSet: "keyed" });
  worker = h.startWorker();
  sub.s0pick = await submit(0, "pick", { selected: ["red"] });
  sub.s0num = await submit(0, "num", { value: PI });
  sub.s1pick = await submit(1, "pick", { selected: ["dog"] });
  sub.s1num = await submit(1, "num", { value: E });
  sub.s2pick = await submit(2, "pick", { selected: ["red"] });
  // Revision 2 changes both keys; the assignment stays pinned to revision 1 until staff move it.
  expect((await uploadBundle(h, w.instructor.token, await keyedSet("keyed", { pick: "dog", num: E }))).json().revision).toBe(2);
}, 180_000);
afterAll(() => h?.close());

describe("one submission", () => {
  it("regrades against the pinned revision, not the latest upload, and reports no change", async () => {
    const res = await h.call("POST", `/v1/submissions/${sub.s0pick}/regrade`, { token: token() });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ id: sub.s0pick, status: expect.stringMatching(/^(queued|running|graded)$/), run: 2 });
    expect(res.json().regradeId).toEqual(expect.any(String));
    const report = await waitForRegrade(h, res.json().regradeId, token());
    expect(report).toMatchObject({ total: 1, done: 1, failed: 0, skipped: [], changes: [] });
    const view = (await h.call("GET", `/v1/submissions/${sub.s0pick}`, { token: token() })).json();
    expect(view.grades.map((g: { run: number; problemRevision: number; score: number }) => [g.run, g.problemRevision, g.score])).toEqual([
      [2, 1, 2],
      [1, 1, 2],
    ]);
  });
});

describe("moving the revision", () => {
  it("refuses an unknown revision, listing the existing ones", async () => {
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/revision`, { token: token(), body: { revision: 9 } });
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({ code: "UNKNOWN_REVISION", details: { revisions: [1, 2] } });
    expect(res.json().error.message).toMatch(/no revision 9; it has 1, 2/);
  });

  it("to the latest with a regrade: every submission graded again on revision 2, each changed score old → new", async () => {
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/revision`, { token: token(), body: { regrade: true } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ assignmentId, revision: 2, regradeId: expect.any(String) });
    // The first concurrent grades start the worker's second grader thread: slow on a loaded machine.
    const report = await waitForRegrade(h, res.json().regradeId, token(), 80_000);
    expect(report).toMatchObject({ total: 5, done: 5, failed: 0, skipped: [] });
    const [s0, s1, s2] = w.students.map((s) => s.id);
    expect(report.changes).toEqual([
      { userId: s0, name: name(0), problem: "num", old: 1, new: 0 },
      { userId: s0, name: name(0), problem: "pick", old: 2, new: 0 },
      { userId: s0, name: name(0), problem: null, old: 3, new: 0 },
      { userId: s1, name: name(1), problem: "num", old: 0, new: 1 },
      { userId: s1, name: name(1), problem: "pick", old: 0, new: 2 },
      { userId: s1, name: name(1), problem: null, old: 0, new: 3 },
      { userId: s2, name: name(2), problem: "pick", old: 2, new: 0 },
      { userId: s2, name: name(2), problem: null, old: 2, new: 0 },
    ]);
    for (const id of Object.values(sub)) expect(await revisionOf(id)).toBe(2);
    // New grades beside the old ones: s1's first answer has its run-1 grade (0) and its new one (2).
    const grades = await h.db.grade.findMany({ where: { submissionId: sub.s1pick }, orderBy: { run: "asc" } });
    expect(grades.map((g) => [g.run, g.score])).toEqual([
      [1, 0],
      [2, 2],
    ]);
    expect(await h.db.auditEvent.count({ where: { action: "assignment.revision", entityId: assignmentId } })).toBe(1);
  }, 90_000);
});

describe("a regrade's scope", () => {
  it("a problem: only its submissions", async () => {
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/regrade`, { token: token(), body: { problem: "num" } });
    expect(res.statusCode).toBe(202);
    const report = await waitForRegrade(h, res.json().id, token());
    expect(report).toMatchObject({ total: 2, done: 2, changes: [] });
    const items = await h.db.regradeItem.findMany({ where: { regradeId: res.json().id } });
    expect(items.map((i) => i.submissionId).sort()).toEqual([sub.s0num, sub.s1num].sort());
  });

  it("a student: only theirs", async () => {
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/regrade`, { token: token(), body: { userId: w.students[2]!.id } });
    expect(res.statusCode).toBe(202);
    expect(await waitForRegrade(h, res.json().id, token())).toMatchObject({ total: 1, done: 1, changes: [] });
  });

  it("nothing to regrade: 200 with an empty report, done at once", async () => {
    const empty = await createAssignment(h, w, { problemSet: "keyed" });
    const res = await h.call("POST", `/v1/assignments/${empty}/regrade`, { token: token() });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ assignmentId: empty, status: "done", total: 0, done: 0, changes: [], skipped: [] });
    expect(res.json().finishedAt).not.toBeNull();
  });

  it("refuses a problem the assignment does not have", async () => {
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/regrade`, { token: token(), body: { problem: "nope" } });
    expect(res.statusCode).toBe(422);
    expect(res.json().error.details).toEqual({ problems: ["pick", "num"] });
  });
});

describe("a regrade interrupted", () => {
  it("resumes after the worker died mid-way and Redis lost its jobs: the outbox finds it, no submission is regraded twice", async () => {
    await worker.close();
    const runsBefore = new Map((await h.db.submission.findMany({ where: { assignmentId } })).map((s) => [s.id, s.gradingRun]));
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/regrade`, { token: token() });
    expect(res.statusCode).toBe(202);
    const regradeId = res.json().id as string;
    // What the dead worker got done: two of five submissions superseded, then the process and its Redis jobs were gone.
    expect(await createItems({ db: h.db, queue: h.queue, log: silent }, regradeId, 2)).toBe(2);
    await h.queue.obliterate({ force: true });
    const past = new Date(Date.now() - 60_000);
    await h.db.regrade.update({ where: { id: regradeId }, data: { updatedAt: past } });
    await h.db.submission.updateMany({ where: { assignmentId }, data: { statusAt: past } });
    const progress = (await h.call("GET", `/v1/regrades/${regradeId}`, { token: token() })).json();
    expect(progress).toMatchObject({ status: "running", total: 5, done: 0 });

    expect(await recoverOnce(h.db, h.queue, { graceMs: 1000 })).toBe(3); // the regrade and its two queued runs
    worker = h.startWorker();
    const report = await waitForRegrade(h, regradeId, token());
    expect(report).toMatchObject({ total: 5, done: 5, failed: 0, changes: [] });
    const after = await h.db.submission.findMany({ where: { assignmentId }, include: { regradeItems: { where: { regradeId } } } });
    for (const s of after) {
      expect(s.gradingRun).toBe(runsBefore.get(s.id)! + 1);
      expect(s.regradeItems.map((i) => i.run)).toEqual([s.gradingRun]);
      expect(s.status).toBe("graded");
    }
  }, 90_000); // closing a worker waits out its blocking poll of Redis

  it("a slug the new revision lacks: that submission is skipped and reported, the others regraded", async () => {
    const bundle = await keyedSet("keyed", { pick: "red", num: PI, numSlug: "num-two" });
    expect((await uploadBundle(h, w.instructor.token, bundle)).json().revision).toBe(3);
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/revision`, { token: token(), body: { revision: 3, regrade: true } });
    expect(res.json()).toMatchObject({ revision: 3 });
    const report = await waitForRegrade(h, res.json().regradeId, token());
    expect(report.skipped.map((s) => [s.submissionId, s.problem]).sort()).toEqual(
      [
        [sub.s0num, "num"],
        [sub.s1num, "num"],
      ].sort(),
    );
    expect(report).toMatchObject({ total: 5, done: 5 });
    expect(await revisionOf(sub.s0num!)).toBe(2); // still the problem it was graded with
    expect(await revisionOf(sub.s0pick!)).toBe(3);
    const pickChanges = report.changes.filter((c) => c.problem === "pick").map((c) => [c.name, c.old, c.new]);
    expect(pickChanges).toEqual([
      [name(0), 0, 2],
      [name(1), 2, 0],
      [name(2), 0, 2],
    ]);
  });
  it("two deliveries of the same regrade at once supersede each submission once", async () => {
    await worker.close();
    const runsBefore = new Map((await h.db.submission.findMany({ where: { assignmentId } })).map((s) => [s.id, s.gradingRun]));
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/regrade`, { token: token(), body: { problem: "pick" } });
    const regradeId = res.json().id as string;
    const deps = { db: h.db, queue: h.queue, log: silent };
    const runTwice = () => Promise.all([createItems(deps, regradeId, 100), createItems(deps, regradeId, 100)]);
    await runTwice();
    await runTwice(); // and once more, as a resumed job would
    const after = await h.db.submission.findMany({ where: { assignmentId }, include: { regradeItems: { where: { regradeId } } } });
    for (const s of after) {
      const inScope = s.problemSlug === "pick";
      expect(s.gradingRun).toBe(runsBefore.get(s.id)! + (inScope ? 1 : 0));
      expect(s.regradeItems.map((i) => i.run)).toEqual(inScope ? [s.gradingRun] : []);
    }
    worker = h.startWorker();
    expect(await waitForRegrade(h, regradeId, token())).toMatchObject({ total: 3, done: 3, changes: [] });
  }, 90_000);
});
