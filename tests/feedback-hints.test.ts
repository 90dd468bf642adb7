import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestResult } from "../graders/types.ts";
import { closedAt, studentTests } from "../src/services/submission-view.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

/**
 * Feedback that teaches without giving the key: students see hints of what they missed, never the
 * rubric's descriptions or accepted phrasings, and the rubric itself only once the assignment
 * closed; staff see everything, always. One rule for every grader's hidden details.
 */
const t = (over: Partial<TestResult>): TestResult => ({
  name: "Concept 1",
  score: 0,
  maxScore: 1,
  status: "failed",
  message: "Not found in your answer.",
  visibility: "visible",
  ...over,
});

describe("what a student sees of a test", () => {
  it("hidden never; after_due and answer keys once closed; a hint only while not passed; staff messages never", () => {
    const tests = [
      t({ name: "missed", hint: "look again", answerKey: "the key", staffMessage: "private" }),
      t({ name: "passed", status: "passed", score: 1, hint: "look again", answerKey: "the key" }),
      t({ name: "hidden", visibility: "hidden" }),
      t({ name: "later", visibility: "after_due" }),
    ];
    expect(studentTests(tests, false)).toEqual([
      { name: "missed", score: 0, maxScore: 1, status: "failed", message: "Not found in your answer.", hint: "look again" },
      { name: "passed", score: 1, maxScore: 1, status: "passed", message: "Not found in your answer." },
    ]);
    const closed = studentTests(tests, true);
    expect(closed.map((x) => x.name)).toEqual(["missed", "passed", "later"]);
    expect(closed[0]).toMatchObject({ hint: "look again", answerKey: "the key" });
    expect(closed[1]).toMatchObject({ answerKey: "the key" });
    expect(JSON.stringify(closed)).not.toContain("private");
  });

  it("an assignment closes when no one can submit any more: after lateUntil if late work is taken", () => {
    const due = new Date("2026-12-01T12:00:00Z");
    const late = new Date("2026-12-03T12:00:00Z");
    expect(closedAt({ dueAt: due, lateUntil: null })).toEqual(due);
    expect(closedAt({ dueAt: due, lateUntil: late })).toEqual(late);
    expect(closedAt({ dueAt: null, lateUntil: null })).toBeNull();
  });
});

const PROBLEM = `title: Short text
points: 2
statement: Name two reasons GANs are hard to train.
grader:
  type: text
  maxScore: 2
  revealAfterDue: true
  synonyms: { D: discriminator }
  rubric:
    - id: collapse
      description: Mode collapse, the generator covers few modes
      hint: Look at the variety of the samples.
      points: 1
      accept: [mode collapse]
    - id: vanish
      description: Vanishing gradients when the discriminator is too strong
      hint: What reaches the generator when one network wins?
      points: 1
      accept: [vanishing gradients, discriminator too strong]
  misconceptions:
    - { id: vae, description: Blames VAEs, accept: [problems of VAE], penalty: 1, hint: Which model is asked about? }
`;

describe("text feedback through the API", () => {
  let h: Harness;
  let w: World;
  let dir: string;
  beforeAll(async () => {
    h = await createHarness("feedback-hints");
    dir = path.join(await mkdtemp(path.join(tmpdir(), "hints-")), "grader-zoo");
    await cp("tests/fixtures/sets/grader-zoo", dir, { recursive: true });
    await writeFile(path.join(dir, "short-text/problem.yaml"), PROBLEM);
    await h.loadSet(dir);
    h.startWorker();
    w = await createWorld(h, { students: 1 });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await rm(path.dirname(dir), { recursive: true, force: true });
  });

  it("students get neutral names and hints before the close, the rubric after; staff see everything", async () => {
    const day = 24 * 3600 * 1000;
    const id = await createAssignment(h, w, { problemSet: "grader-zoo", dueAt: new Date(Date.now() + day).toISOString() });
    const s = w.students[0]!;
    const sub = await h.call("POST", `/v1/assignments/${id}/problems/short-text/submissions`, {
      token: s.token,
      body: { answer: { text: "Mode collapse is one of the problems of VAEs, and D is never too strong." } },
    });
    expect(sub.statusCode, sub.body).toBe(202);
    const mine = await waitForGrade(h, sub.json().id, s.token);
    expect(mine).toMatchObject({ status: "graded", score: 0 });
    expect(mine.feedback.tests.map((x: TestResult) => x.name)).toEqual(["Concept 1", "Concept 2", "Misconception 1"]);
    expect(mine.feedback.tests[1]).toMatchObject({ hint: "What reaches the generator when one network wins?" });
    expect(mine.feedback.tests[1].message).toMatch(/negation/);
    expect(mine.feedback.tests[2]).toMatchObject({ hint: "Which model is asked about?" });
    const shown = JSON.stringify(mine);
    for (const secret of [
      "Mode collapse, the generator",
      "Vanishing gradients",
      "vanishing gradients",
      "discriminator too strong",
      "Blames VAEs",
      "staffMessage",
      "reviewReasons",
      "answerKey",
      "needsReview",
    ]) {
      expect(shown, secret).not.toContain(secret);
    }

    const staff = (await h.call("GET", `/v1/submissions/${sub.json().id}`, { token: w.instructor.token })).json();
    expect(staff.needsReview).toBe(true);
    expect(staff.feedback.reviewReasons.join()).toMatch(/misconception vae asserted/);
    expect(staff.feedback.tests[0].staffMessage).toMatch(/collapse: Mode collapse, the generator covers few modes — found/);
    expect(staff.feedback.tests[0].answerKey).toBe("Mode collapse, the generator covers few modes");

    // Past the due date but late work still accepted: the key stays hidden.
    await h.db.assignment.update({ where: { id }, data: { dueAt: new Date(Date.now() - day), lateUntil: new Date(Date.now() + day) } });
    const late = (await h.call("GET", `/v1/submissions/${sub.json().id}`, { token: s.token })).json();
    expect(JSON.stringify(late)).not.toContain("answerKey");
    await h.db.assignment.update({ where: { id }, data: { lateUntil: new Date(Date.now() - 1000) } });
    const closed = (await h.call("GET", `/v1/submissions/${sub.json().id}`, { token: s.token })).json();
    expect(closed.feedback.tests.map((x: { answerKey?: string }) => x.answerKey)).toEqual([
      "Mode collapse, the generator covers few modes",
      "Vanishing gradients when the discriminator is too strong",
      "Blames VAEs",
    ]);
    expect(JSON.stringify(closed)).not.toContain("staffMessage");
  });
});
