/**
 * Scores of record through the real API and workers: late days and steps, extensions, best vs last, attempts
 * (concurrency, failures, rejections per setting), exam windows, pinned revisions and who sees which grades.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tarGzOf } from "./helpers/bundles.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";
import { enroll, mkCourse, mkUser, type Person } from "./helpers/people.ts";
import { choiceBundle, uploadBundle } from "./helpers/set-bundles.ts";

const H = 3_600_000;
const iso = (msFromNow: number) => new Date(Date.now() + msFromNow).toISOString();
const RIGHT = { selected: ["red"] };
const WRONG = { selected: ["dog"] };

let h: Harness;
let w: World;
let s0: Person, s1: Person, s2: Person, ta: Person, outsider: Person;

const url = (a: string, problem = "single-choice") => `/v1/assignments/${a}/problems/${problem}/submissions`;
const post = (a: string, who: Person, answer: unknown, problem = "single-choice") =>
  h.call("POST", url(a, problem), { token: who.token, body: { answer } });
async function submitGraded(a: string, who: Person, answer: unknown, problem = "single-choice") {
  const res = await post(a, who, answer, problem);
  expect(res.statusCode, res.body).toBe(202);
  return waitForGrade(h, res.json().id, who.token);
}
const assign = (body: Record<string, unknown>) => createAssignment(h, w, { problemSet: "grader-zoo", ...body });
async function grades(a: string, who: Person = w.instructor) {
  const res = await h.call("GET", `/v1/assignments/${a}/grades`, { token: who.token });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}
/** One student's record of one problem, as staff see it. */
async function record(a: string, student: Person, problem = "single-choice") {
  const row = (await grades(a)).students.find((s: { userId: string }) => s.userId === student.id);
  return row.problems.find((p: { problem: string }) => p.problem === problem);
}
const extend = (a: string, who: Person, body: unknown, by: Person = w.instructor) =>
  h.call("PUT", `/v1/assignments/${a}/extensions/${who.id}`, { token: by.token, body });
const patch = (a: string, body: unknown) => h.call("PATCH", `/v1/assignments/${a}`, { token: w.instructor.token, body });

beforeAll(async () => {
  h = await createHarness("gradebook_records");
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  h.startWorker();
  w = await createWorld(h, { students: 3, course: "gb-101" });
  [s0, s1, s2] = w.students as [Person, Person, Person];
  ta = await enroll(h, w.adminToken, w.courseId, await mkUser(h, w.adminToken, "ta-gb@example.org"), "ta");
  const other = await mkCourse(h, w.adminToken, "gb-other");
  outsider = await enroll(h, w.adminToken, other, await mkUser(h, w.adminToken, "outsider-gb@example.org"), "student");
});
afterAll(() => h?.close());

describe("late work", () => {
  it("per started day: 25 h late keeps 50 %; an extension granted later makes the same work on time", async () => {
    const a = await assign({ dueAt: iso(-25 * H), lateUntil: iso(24 * H), latePenaltyPerDay: 0.25 });
    const sub = await submitGraded(a, s0, RIGHT);
    expect(sub).toMatchObject({ status: "graded", score: 1, lateFactor: 0.5 });
    await submitGraded(a, s1, RIGHT);
    expect(await record(a, s0)).toMatchObject({ score: 1, rawScore: 2, lateFactor: 0.5, submissionId: sub.id, attempt: 1 });

    const ext = await extend(a, s0, { dueAt: iso(24 * H) });
    expect(ext.statusCode, ext.body).toBe(200);
    expect(ext.json()).toMatchObject({ userId: s0.id, extraAttempts: 0, grantedById: w.instructor.id });
    expect(await record(a, s0)).toMatchObject({ score: 2, lateFactor: 1, submissionId: sub.id });
    expect(await record(a, s1)).toMatchObject({ score: 1, lateFactor: 0.5 });
    const audited = await h.db.auditEvent.findMany({ where: { action: "extension.put", entityId: a } });
    expect(audited).toHaveLength(1);

    expect((await h.call("DELETE", `/v1/assignments/${a}/extensions/${s0.id}`, { token: ta.token })).statusCode).toBe(204);
    expect(await record(a, s0)).toMatchObject({ score: 1, lateFactor: 0.5 });
    expect((await h.call("DELETE", `/v1/assignments/${a}/extensions/${s0.id}`, { token: ta.token })).statusCode).toBe(404);
  });

  it("a step list: 2 h late is within the second step (0.6); an on-time answer keeps all", async () => {
    const steps = [
      { hoursLate: 1, factor: 0.9 },
      { hoursLate: 48, factor: 0.6 },
    ];
    const a = await assign({ dueAt: iso(-2 * H), lateUntil: iso(24 * H), lateSteps: steps });
    await submitGraded(a, s0, RIGHT);
    expect(await record(a, s0)).toMatchObject({ score: 1.2, rawScore: 2, lateFactor: 0.6 });
    const view = await h.call("GET", `/v1/assignments/${a}`, { token: w.instructor.token });
    expect(view.json()).toMatchObject({ lateSteps: steps, latePenaltyPerDay: 0 });
  });

  it("an extension past lateUntil reopens a closed assignment for that student only", async () => {
    const a = await assign({ dueAt: iso(-3 * H), lateUntil: iso(-2 * H) });
    expect((await post(a, s0, RIGHT)).json().error.code).toBe("ASSIGNMENT_CLOSED");
    expect((await extend(a, s0, { dueAt: iso(H) })).statusCode).toBe(200);
    expect((await submitGraded(a, s0, RIGHT)).lateFactor).toBe(1);
    expect((await post(a, s1, RIGHT)).json().error.code).toBe("ASSIGNMENT_CLOSED");
  });
});

describe("score policy", () => {
  it("best keeps the right answer after a wrong one; last takes the newest", async () => {
    const best = await assign({ scorePolicy: "best" });
    const last = await assign({ scorePolicy: "last" });
    for (const a of [best, last]) {
      await submitGraded(a, s0, RIGHT);
      await submitGraded(a, s0, WRONG);
    }
    expect(await record(best, s0)).toMatchObject({ score: 2, attempt: 1, attemptsUsed: 2, pending: 0 });
    expect(await record(last, s0)).toMatchObject({ score: 0, attempt: 2 });
    // The instructor switches the policy: the record follows, nothing is rewritten.
    const changed = await patch(last, { scorePolicy: "best" });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(await record(last, s0)).toMatchObject({ score: 2, attempt: 1 });
    expect(await h.db.auditEvent.count({ where: { action: "assignment.update", entityId: last } })).toBe(1);
  });

  it("totals add the problems' scores of record; a problem not tried counts 0", async () => {
    const a = await assign({});
    await submitGraded(a, s2, RIGHT);
    await submitGraded(a, s2, { value: 3.14 }, "numeric-fixed");
    const row = (await grades(a)).students.find((s: { userId: string }) => s.userId === s2.id);
    expect(row.total).toEqual({ score: 3, maxScore: 16 });
    expect(row.problems.map((p: { problem: string }) => p.problem)).toEqual([
      "single-choice",
      "multi-choice",
      "numeric-fixed",
      "numeric-random",
      "expression",
      "tensor-random",
      "short-text",
    ]);
  });
});

describe("attempts", () => {
  it("8 concurrent submissions with 3 attempts: exactly 3 accepted, 5 refused 409 with used/max", async () => {
    const a = await assign({ maxAttempts: 3 });
    const results = await Promise.all(Array.from({ length: 8 }, () => post(a, s1, RIGHT)));
    expect(results.map((r) => r.statusCode).sort()).toEqual([202, 202, 202, 409, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.statusCode === 409))
      expect(r.json().error).toMatchObject({ code: "ATTEMPTS_EXHAUSTED", details: { used: 3, max: 3 } });
    const rows = await h.db.submission.findMany({ where: { assignmentId: a }, orderBy: { attempt: "asc" } });
    expect(rows.map((s) => s.attempt)).toEqual([1, 2, 3]);
  });

  it("extra attempts of an extension; the assignment page counts what is left", async () => {
    const a = await assign({ maxAttempts: 1 });
    await submitGraded(a, s0, WRONG);
    expect((await post(a, s0, RIGHT)).json().error).toMatchObject({ code: "ATTEMPTS_EXHAUSTED", details: { used: 1, max: 1 } });
    expect((await extend(a, s0, { extraAttempts: 2 }, ta)).statusCode).toBe(200);
    const page = (await h.call("GET", `/v1/assignments/${a}`, { token: s0.token })).json();
    expect(page.yours).toMatchObject({ role: "student", maxAttempts: 3, extension: { extraAttempts: 2 } });
    expect(page.problems[0]).toMatchObject({ slug: "single-choice", attemptsUsed: 1, attemptsLeft: 2, score: 0 });
    await submitGraded(a, s0, RIGHT);
    await submitGraded(a, s0, WRONG);
    expect((await post(a, s0, RIGHT)).json().error.details).toEqual({ used: 3, max: 3 });
    expect(await record(a, s0)).toMatchObject({ score: 2, attempt: 2, attemptsUsed: 3 });
  });

  it("a failed submission uses no attempt and never counts as a score", async () => {
    const a = await assign({ maxAttempts: 1 });
    const first = await submitGraded(a, s2, RIGHT);
    await h.db.submission.update({ where: { id: first.id }, data: { status: "failed", lastErrorCode: "GRADING_FAILED" } });
    expect(await record(a, s2)).toMatchObject({ score: null, attemptsUsed: 0 });
    const again = await post(a, s2, WRONG);
    expect(again.statusCode, again.body).toBe(202);
    expect(again.json().attempt).toBe(2);
  });

  it("rejections before anything ran use none unless the assignment says so; after a model ran, one unless it says not", async () => {
    const a = await assign({ maxAttempts: 1 });
    const rejected = await submitGraded(a, s1, { selected: ["purple"] }); // an unknown option: refused by the grader's check
    expect(rejected.status).toBe("rejected");
    expect(await record(a, s1)).toMatchObject({ attemptsUsed: 0, score: null });
    expect((await patch(a, { countPrecheckRejections: true })).statusCode).toBe(200);
    expect((await post(a, s1, RIGHT)).json().error).toMatchObject({ code: "ATTEMPTS_EXHAUSTED", details: { used: 1, max: 1 } });
    expect((await patch(a, { countPrecheckRejections: false })).statusCode).toBe(200);
    // What the worker writes when a student's model timed out: counted by default.
    await h.db.submission.update({ where: { id: rejected.id }, data: { lastErrorCode: "MODEL_TIMEOUT" } });
    expect((await post(a, s1, RIGHT)).statusCode).toBe(409);
    expect((await patch(a, { countRunRejections: false })).statusCode).toBe(200);
    expect(await record(a, s1)).toMatchObject({ attemptsUsed: 0 });
    expect((await post(a, s1, RIGHT)).statusCode).toBe(202);
  });
});

describe("exam windows", () => {
  it("the first view starts the clock; past the limit EXAM_TIME_OVER; extra minutes reopen it", async () => {
    const a = await assign({ timeLimitMinutes: 30 });
    const first = (await h.call("GET", `/v1/assignments/${a}`, { token: s0.token })).json();
    const started = new Date(first.yours.examStartedAt).getTime();
    expect(Math.abs(started - Date.now())).toBeLessThan(10_000);
    expect(new Date(first.yours.examEndsAt).getTime()).toBe(started + 30 * 60_000);
    const again = (await h.call("GET", `/v1/assignments/${a}`, { token: s0.token })).json();
    expect(again.yours.examStartedAt).toBe(first.yours.examStartedAt);
    expect((await submitGraded(a, s0, RIGHT)).status).toBe("graded");

    // 31 minutes pass.
    await h.db.examStart.update({
      where: { assignmentId_userId: { assignmentId: a, userId: s0.id } },
      data: { startedAt: new Date(Date.now() - 31 * 60_000) },
    });
    const late = await post(a, s0, RIGHT);
    expect(late.statusCode).toBe(403);
    expect(late.json().error.code).toBe("EXAM_TIME_OVER");
    const page = (await h.call("GET", `/v1/assignments/${a}`, { token: s0.token })).json();
    expect(page.yours.window).toMatchObject({ open: false, reason: "EXAM_TIME_OVER" });
    expect((await extend(a, s0, { extraMinutes: 10 })).statusCode).toBe(200);
    expect((await post(a, s0, RIGHT)).statusCode).toBe(202);

    // Staff views start no clock; a submission before any view starts the student's.
    await h.call("GET", `/v1/assignments/${a}`, { token: w.instructor.token });
    expect(await h.db.examStart.count({ where: { assignmentId: a, userId: w.instructor.id } })).toBe(0);
    expect((await post(a, s1, RIGHT)).statusCode).toBe(202);
    expect(await h.db.examStart.count({ where: { assignmentId: a, userId: s1.id } })).toBe(1);
  });

  it("before it opens a student may not see it, and no clock starts", async () => {
    const a = await assign({ opensAt: iso(H), timeLimitMinutes: 30 });
    const res = await h.call("GET", `/v1/assignments/${a}`, { token: s2.token });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe("ASSIGNMENT_NOT_OPEN");
    expect(await h.db.examStart.count({ where: { assignmentId: a } })).toBe(0);
  });
});

describe("pinned revisions", () => {
  it("an upload of a new revision changes nothing an existing assignment serves or grades", async () => {
    expect((await uploadBundle(h, w.instructor.token, await choiceBundle("pinned-set", { correct: ["red"] }))).statusCode).toBe(201);
    const old = await assign({ problemSet: "pinned-set" });
    const v2 = await uploadBundle(h, w.instructor.token, await choiceBundle("pinned-set", { correct: ["dog"], title: "Version 2" }));
    expect(v2.json()).toMatchObject({ revision: 2, created: true });
    const fresh = await assign({ problemSet: "pinned-set" });

    const page = (await h.call("GET", `/v1/assignments/${old}`, { token: s0.token })).json();
    expect(page).toMatchObject({ revision: 1, title: "pinned-set", problems: [{ slug: "pick" }] });
    expect((await h.call("GET", `/v1/assignments/${fresh}`, { token: s0.token })).json()).toMatchObject({ revision: 2 });
    expect(await submitGraded(old, s0, RIGHT, "pick")).toMatchObject({ status: "graded", score: 2 });
    expect(await submitGraded(fresh, s0, RIGHT, "pick")).toMatchObject({ status: "graded", score: 0 });
    expect((await grades(old)).revision).toBe(1);
  });

  it("the page shows each student their own numbers, as the set page does", async () => {
    const a = await assign({});
    const page = (await h.call("GET", `/v1/assignments/${a}`, { token: s1.token })).json();
    const set = (await h.call("GET", "/v1/problem-sets/grader-zoo", { token: s1.token })).json();
    const slugOf = (p: { slug: string }) => p.slug === "numeric-random";
    expect(page.problems.find(slugOf).answerFormat).toEqual(set.problems.find(slugOf).answerFormat);
    expect(page.problems.find(slugOf).statement).toBe(set.problems.find(slugOf).statement);
  });
});

describe("answer keys and extensions", () => {
  it("keys stay hidden from students while anyone's extension still lets them submit", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "keys-"));
    await mkdir(path.join(dir, "keyed-set/why"), { recursive: true });
    await writeFile(path.join(dir, "keyed-set/set.yaml"), "slug: keyed-set\ntitle: Keys\nproblems: [why]\n");
    await writeFile(
      path.join(dir, "keyed-set/why/problem.yaml"),
      "title: Why\npoints: 1\nstatement: Why?\ngrader:\n  type: text\n  revealAfterDue: true\n  rubric:\n" +
        "    - { id: collapse, description: The secret key, points: 1, accept: [mode collapse] }\n",
    );
    expect((await uploadBundle(h, w.instructor.token, await tarGzOf(path.join(dir, "keyed-set")))).statusCode).toBe(201);
    await rm(dir, { recursive: true, force: true });
    const a = await assign({ problemSet: "keyed-set", dueAt: iso(H) });
    const sub = await submitGraded(a, s0, { text: "no idea" }, "why");
    await extend(a, s1, { dueAt: iso(2 * H) });
    await h.db.assignment.update({ where: { id: a }, data: { dueAt: new Date(Date.now() - 1000) } });
    const seen = async () => JSON.stringify((await h.call("GET", `/v1/submissions/${sub.id}`, { token: s0.token })).json());
    const listed = async () => JSON.stringify((await h.call("GET", `/v1/assignments/${a}/submissions`, { token: s0.token })).json());
    expect(await seen()).not.toContain("The secret key");
    expect(await listed()).not.toContain("The secret key");
    await h.db.extension.update({
      where: { assignmentId_userId: { assignmentId: a, userId: s1.id } },
      data: { dueAt: new Date(Date.now() - 500) },
    });
    expect(await seen()).toContain("The secret key");
    expect(await listed()).toContain("The secret key");
  });
});

describe("who sees which grades", () => {
  it("staff see every student, a student their own row, an outsider nothing", async () => {
    const a = await assign({});
    const sub = await submitGraded(a, s0, WRONG);
    await submitGraded(a, w.instructor, RIGHT); // staff tries are not grades
    await h.db.scoreOverride.create({ data: { submissionId: sub.id, score: 1.5, comment: "fair point", byId: ta.id } });
    const all = await grades(a, ta);
    expect(all.students.map((s: { userId: string }) => s.userId).sort()).toEqual([s0.id, s1.id, s2.id].sort());
    const mine = await grades(a, s0);
    expect(mine.students).toHaveLength(1);
    expect(mine.students[0]).toMatchObject({ userId: s0.id, total: { score: 1.5, maxScore: 16 } });
    expect(mine.students[0].problems[0]).toMatchObject({
      score: 1.5,
      rawScore: 0,
      submissionId: sub.id,
      override: { score: 1.5, comment: "fair point", by: ta.id },
    });
    expect((await h.call("GET", `/v1/assignments/${a}/grades`, { token: outsider.token })).statusCode).toBe(404);
  });
});

describe("bad input", () => {
  it("extensions: not a student of the course 422; dates that do not fit 422; staff only", async () => {
    const a = await assign({ dueAt: iso(24 * H) });
    const notEnrolled = await extend(a, outsider, { extraAttempts: 1 });
    expect(notEnrolled.statusCode).toBe(422);
    expect(notEnrolled.json().error).toMatchObject({ code: "NOT_A_STUDENT", message: expect.stringMatching(/not enrolled as a student/) });
    expect((await extend(a, ta, { extraAttempts: 1 })).json().error.code).toBe("NOT_A_STUDENT");
    const backwards = await extend(a, s0, { dueAt: iso(48 * H), lateUntil: iso(30 * H) });
    expect(backwards.statusCode).toBe(422);
    expect(backwards.json().error.code).toBe("INVALID_EXTENSION");
    expect((await extend(a, s0, {})).statusCode).toBe(422);
    expect((await extend(a, s0, { extraAttempts: 1 }, s1)).statusCode).toBe(403);
    expect(await h.db.extension.count({ where: { assignmentId: a } })).toBe(0);
  });

  it("assignments: steps and a per-day rate together 422; unordered steps 400; impossible dates 422", async () => {
    const steps = [{ hoursLate: 5, factor: 0.5 }];
    const both = await h.call("POST", `/v1/courses/${w.courseId}/assignments`, {
      token: w.instructor.token,
      body: { problemSet: "grader-zoo", lateSteps: steps, latePenaltyPerDay: 0.1 },
    });
    expect(both.statusCode).toBe(422);
    expect(both.json().error.details).toEqual([{ field: "lateSteps", message: expect.stringMatching(/not both/) }]);
    const a = await assign({ latePenaltyPerDay: 0.1 });
    expect((await patch(a, { lateSteps: steps })).statusCode).toBe(422);
    expect((await patch(a, { lateSteps: steps, latePenaltyPerDay: 0 })).statusCode).toBe(200);
    expect((await patch(a, { lateSteps: [...steps, { hoursLate: 2, factor: 0.1 }] })).statusCode).toBe(400);
    expect((await patch(a, { dueAt: iso(H), lateUntil: iso(-H) })).statusCode).toBe(422);
    expect((await h.call("PATCH", `/v1/assignments/${a}`, { token: ta.token, body: { title: "x" } })).statusCode).toBe(403);
    const cleared = await patch(a, { lateSteps: null, maxAttempts: null });
    expect(cleared.json()).toMatchObject({ lateSteps: null, maxAttempts: null, latePenaltyPerDay: 0 });
  });
});
