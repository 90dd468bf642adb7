import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

const ZOO = "tests/fixtures/sets/grader-zoo";

let h: Harness;
let w: World;
let assignmentId: string;
/** Each student's own numbers, as the API shows them. */
const paramsOf = new Map<string, Record<string, Record<string, unknown>>>();

async function submit(token: string, problem: string, answer: unknown) {
  const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/${problem}/submissions`, { token, body: { answer } });
  expect(res.statusCode, res.body).toBe(202);
  return waitForGrade(h, res.json().id, token);
}

async function studentParams(token: string) {
  const res = await h.call("GET", "/v1/problem-sets/grader-zoo", { token });
  expect(res.statusCode).toBe(200);
  return Object.fromEntries(
    res.json().problems.map((p: { slug: string; answerFormat: { params?: object } }) => [p.slug, p.answerFormat.params ?? {}]),
  );
}

const matmulT = (x: number[][]) => x.map((r) => x.map((s) => r.reduce((acc, v, k) => acc + v * s[k]!, 0)));

beforeAll(async () => {
  h = await createHarness("flow");
  await h.loadSet(ZOO);
  h.startWorker();
  w = await createWorld(h, { students: 2 });
  assignmentId = await createAssignment(h, w, { problemSet: "grader-zoo", maxAttempts: 20 });
  for (const s of w.students) paramsOf.set(s.id, await studentParams(s.token));
});
afterAll(() => h?.close());

describe("the whole flow, one grader type at a time", () => {
  it("choice: single right and wrong; multiple with partial credit", async () => {
    const t = w.students[0]!.token;
    expect(await submit(t, "single-choice", { selected: ["red"] })).toMatchObject({ status: "graded", score: 2, maxScore: 2 });
    expect(await submit(t, "single-choice", { selected: ["dog"] })).toMatchObject({ status: "graded", score: 0 });
    expect(await submit(t, "multi-choice", { selected: ["2", "3", "5"] })).toMatchObject({ score: 4, maxScore: 4 });
    // (2 right − 1 wrong) / 3 correct × 4 points
    const partial = await submit(t, "multi-choice", { selected: ["2", "3", "4"] });
    expect(partial.score).toBeCloseTo(4 / 3, 5);
    expect(await submit(t, "multi-choice", { selected: ["4"] })).toMatchObject({ score: 0 });
    // unknown option id: graded as rejected with a reason, not an error
    const bad = await submit(t, "single-choice", { selected: ["purple"] });
    expect(bad.status).toBe("rejected");
    expect(bad.feedback.summary).toMatch(/purple/);
  });

  it("numeric: fixed and randomised, graded on the student's own numbers", async () => {
    const [s0, s1] = w.students as [World["students"][0], World["students"][0]];
    expect(await submit(s0.token, "numeric-fixed", { value: 3.14 })).toMatchObject({ score: 1 });
    expect(await submit(s0.token, "numeric-fixed", { value: 3.2 })).toMatchObject({ score: 0 });

    const p0 = paramsOf.get(s0.id)!["numeric-random"] as { a: number; b: number };
    const p1 = paramsOf.get(s1.id)!["numeric-random"] as { a: number; b: number };
    expect(p0).not.toEqual(p1);
    expect(await studentParams(s0.token)).toEqual(paramsOf.get(s0.id)); // same numbers on every request
    expect(await submit(s0.token, "numeric-random", { value: p0.a * p0.b })).toMatchObject({ score: 3 });
    // the other student's right answer is wrong for this one
    expect(await submit(s0.token, "numeric-random", { value: p1.a * p1.b })).toMatchObject({ score: 0 });
  });

  it("expression: equivalent forms pass, others fail, nonsense is rejected with a reason", async () => {
    const t = w.students[0]!.token;
    expect(await submit(t, "expression", { expression: "1/(W*H)" })).toMatchObject({ status: "graded", score: 2 });
    expect(await submit(t, "expression", { expression: "(1/H) * W^-1" })).toMatchObject({ score: 2 });
    expect(await submit(t, "expression", { expression: "1/(H+W)" })).toMatchObject({ score: 0 });
    const junk = await submit(t, "expression", { expression: "1/(H*" });
    expect(junk.status).toBe("rejected");
    expect(junk.feedback.summary.length).toBeGreaterThan(10);
  });

  it("tensor: right, partly wrong, wrong shape", async () => {
    const s = w.students[1]!;
    const { X } = paramsOf.get(s.id)!["tensor-random"] as { X: number[][] };
    const right = matmulT(X);
    expect(await submit(s.token, "tensor-random", { value: right })).toMatchObject({ score: 2 });
    const off = right.map((r) => [...r]);
    off[0]![0]! += 1;
    expect(await submit(s.token, "tensor-random", { value: off })).toMatchObject({ score: 0 });
    const shape = await submit(s.token, "tensor-random", { value: [[1, 2]] });
    expect(shape.score).toBe(0);
    expect(JSON.stringify(shape.feedback)).toMatch(/shape/i);
  });

  it("text: a point per distinct reason, capped", async () => {
    const t = w.students[1]!.token;
    const full = await submit(t, "short-text", {
      text: "Mode collapse, and the min-max game has no convergence guarantee. Also vanishing gradients.",
    });
    expect(full).toMatchObject({ status: "graded", score: 2, maxScore: 2 });
    expect(await submit(t, "short-text", { text: "The generator suffers mode collapse." })).toMatchObject({ score: 1 });
    expect(await submit(t, "short-text", { text: "Because the learning rate is too small." })).toMatchObject({ score: 0 });
  });

  it("records how each grade was made, for staff only", async () => {
    const s = w.students[0]!;
    const graded = await submit(s.token, "single-choice", { selected: ["red"] });
    expect(graded.grades).toBeUndefined();
    expect(graded.answer).toBeUndefined();
    const staffView = (await h.call("GET", `/v1/submissions/${graded.id}`, { token: w.instructor.token })).json();
    expect(staffView.grades[0]).toMatchObject({ graderType: "choice", problemRevision: 1, run: 1, kind: "auto" });
    expect(staffView.answer).toEqual({ selected: ["red"] });
  });

  it("lists: students see their own submissions, staff see everyone's and can filter", async () => {
    const mine = (await h.call("GET", `/v1/assignments/${assignmentId}/submissions`, { token: w.students[1]!.token })).json();
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((s: { userId: string }) => s.userId === w.students[1]!.id)).toBe(true);
    const all = (await h.call("GET", `/v1/assignments/${assignmentId}/submissions`, { token: w.instructor.token })).json();
    expect(new Set(all.map((s: { userId: string }) => s.userId)).size).toBe(2);
    const filtered = (
      await h.call("GET", `/v1/assignments/${assignmentId}/submissions?userId=${w.students[0]!.id}&problem=expression`, {
        token: w.instructor.token,
      })
    ).json();
    expect(filtered.length).toBe(4);
    expect(filtered.every((s: { problem: string }) => s.problem === "expression")).toBe(true);
  });

  it("regrade writes a new grade run and keeps the old one", async () => {
    const s = w.students[0]!;
    const first = await submit(s.token, "numeric-fixed", { value: 3.14 });
    const res = await h.call("POST", `/v1/submissions/${first.id}/regrade`, { token: w.instructor.token });
    expect(res.statusCode).toBe(202);
    expect(res.json().run).toBe(2);
    await waitForGrade(h, first.id, s.token);
    const staffView = (await h.call("GET", `/v1/submissions/${first.id}`, { token: w.instructor.token })).json();
    expect(staffView.grades.map((g: { run: number }) => g.run)).toEqual([2, 1]);
    expect(await h.db.grade.count({ where: { submissionId: first.id } })).toBe(2);
    expect((await h.call("POST", `/v1/submissions/${first.id}/regrade`, { token: s.token })).statusCode).toBe(403);
  });
});
