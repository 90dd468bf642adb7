import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerFor, readSolutions, type Solution } from "../src/catalog/solutions.ts";
import { multipart } from "./helpers/bundles.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

/**
 * The course's mid-term review as students meet it: every problem loads and shows its statement, every
 * reference solution grades to full marks and every wrong one to less, through the API, the queue and
 * real workers (models in the sandbox), for two students with their own numbers.
 */
const SET = "dl-midterm-review";
const DIR = path.join("problems", SET);

interface Problem {
  slug: string;
  title: string;
  points: number;
  type: string;
  statement: string;
  answerFormat: { params?: Record<string, unknown> };
}

let h: Harness;
let w: World;
let assignmentId: string;
const views = new Map<string, Problem[]>();

async function submit(token: string, problem: Problem, solution: Solution) {
  const url = `/v1/assignments/${assignmentId}/problems/${problem.slug}/submissions`;
  const res = solution.model
    ? await h.app.inject({
        method: "POST",
        url,
        headers: { authorization: `Bearer ${token}` },
        payload: multipart("model", solution.name, Buffer.from(solution.model), "application/octet-stream") as any,
      })
    : await h.call("POST", url, { token, body: { answer: answerFor(solution, (problem.answerFormat.params ?? {}) as never) } });
  expect(res.statusCode, `${problem.slug} ${solution.name}: ${res.body}`).toBe(202);
  return res.json().id as string;
}

beforeAll(async () => {
  h = await createHarness("midterm", { SANDBOX_POOL_SIZE: "2", WORKER_CONCURRENCY: "2" });
  await h.loadSet(DIR);
  h.startWorker();
  w = await createWorld(h, { students: 2 });
  assignmentId = await createAssignment(h, w, { problemSet: SET });
  for (const s of w.students) views.set(s.id, (await h.call("GET", `/v1/problem-sets/${SET}`, { token: s.token })).json().problems);
}, 120_000);
afterAll(() => h?.close());

describe("the mid-term review set", () => {
  it("covers the review: every problem has a statement, an answer format and solutions", async () => {
    const problems = views.get(w.students[0]!.id)!;
    expect(problems.length).toBeGreaterThanOrEqual(25);
    for (const p of problems) {
      expect(p.statement.length, p.slug).toBeGreaterThan(80);
      expect(p.statement, p.slug).not.toMatch(/\{\{\w+\}\}/); // every placeholder filled with the student's numbers
      const solutions = await readSolutions(path.join(DIR, p.slug));
      expect(solutions.filter((s) => s.kind === "reference").length, `${p.slug} reference`).toBeGreaterThanOrEqual(1);
      expect(solutions.filter((s) => s.kind === "wrong").length, `${p.slug} wrong`).toBeGreaterThanOrEqual(1);
    }
    const types = new Set(problems.map((p) => p.type));
    for (const t of [
      "choice",
      "numeric",
      "expression",
      "tensor",
      "text",
      "psychometric",
      "onnx-function",
      "onnx-generator",
      "onnx-detector",
      "onnx-encoder-objective",
      "onnx-embedding",
    ])
      expect(types, t).toContain(t);
  });

  it("randomised problems: two students get different numbers; one student the same numbers every time", async () => {
    // Seeds come from user ids; fixed ids make this check deterministic (small choice sets can coincide by chance).
    const fixed = [];
    for (const id of ["5e1f7c2a-0000-4000-8000-000000000001", "5e1f7c2a-0000-4000-8000-000000000002"]) {
      await h.db.user.create({ data: { id, email: `${id}@example.org`, name: id } });
      await h.call("PUT", `/v1/courses/${w.courseId}/enrollments/${id}`, { token: w.instructor.token, body: { role: "student" } });
      const token = (await h.call("POST", `/v1/users/${id}/tokens`, { token: w.adminToken, body: { name: "t" } })).json().token;
      fixed.push({ token, problems: (await h.call("GET", `/v1/problem-sets/${SET}`, { token })).json().problems as Problem[] });
    }
    const [a, b] = fixed as [(typeof fixed)[0], (typeof fixed)[0]];
    const randomised = a.problems.filter((p) => Object.keys(p.answerFormat.params ?? {}).length > 0);
    expect(randomised.length).toBeGreaterThanOrEqual(8);
    const again = (await h.call("GET", `/v1/problem-sets/${SET}`, { token: a.token })).json().problems as Problem[];
    for (const p of randomised) {
      const other = b.problems.find((q) => q.slug === p.slug)!;
      expect(other.answerFormat.params, p.slug).not.toEqual(p.answerFormat.params);
      expect(other.statement, p.slug).not.toEqual(p.statement);
      expect(again.find((q) => q.slug === p.slug)!.answerFormat.params, p.slug).toEqual(p.answerFormat.params);
    }
  });

  it("every reference solution grades to full marks and every wrong one to less, for each student", async () => {
    const pending: { id: string; token: string; slug: string; name: string; kind: string; points: number }[] = [];
    for (const [i, s] of w.students.entries()) {
      for (const p of views.get(s.id)!) {
        for (const solution of await readSolutions(path.join(DIR, p.slug))) {
          // Model problems draw nothing from the student's numbers: wrong models once are enough.
          if (solution.model && solution.kind === "wrong" && i > 0) continue;
          pending.push({
            id: await submit(s.token, p, solution),
            token: s.token,
            slug: p.slug,
            name: solution.name,
            kind: solution.kind,
            points: p.points,
          });
        }
      }
    }
    const failures: string[] = [];
    for (const j of pending) {
      const g = await waitForGrade(h, j.id, j.token, 120_000);
      const full = g.status === "graded" && Math.abs(g.score - j.points) < 1e-6;
      if (j.kind === "reference" && !full) failures.push(`${j.slug}/${j.name}: ${g.status} ${g.score}/${j.points} ${g.feedback?.summary}`);
      if (j.kind === "wrong" && g.status === "graded" && g.score >= j.points)
        failures.push(`${j.slug}/${j.name}: full marks for a wrong answer`);
    }
    expect(failures).toEqual([]);
  }, 600_000);
});
