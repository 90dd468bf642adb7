import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.ts";
import { createAssignment, createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

// Issue 12, "Clients need not poll": GET /v1/submissions/{id}?wait=N holds the answer until the submission leaves
// queued/running (woken through Redis pub/sub) or N seconds pass; same body and visibility as without it.

let h: Harness;
let w: World;
let assignmentId: string;

beforeAll(async () => {
  h = await createHarness("long-poll");
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  w = await createWorld(h, { students: 2 });
  assignmentId = await createAssignment(h, w, { problemSet: "grader-zoo" });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

async function submit(token: string, value = 1): Promise<string> {
  const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/numeric-fixed/submissions`, {
    token,
    body: { answer: { value } },
  });
  expect(res.statusCode, res.body).toBe(202);
  return res.json().id;
}

/** Waits for a condition of this process (e.g. the long-polls are subscribed), failing after ms. */
async function until(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const timed = async <T>(p: Promise<T>) => {
  const t0 = Date.now();
  const value = await p;
  return { value, ms: Date.now() - t0 };
};

describe("long-poll", () => {
  it("validates wait: 0–60 seconds, 400 with the error shape beyond", async () => {
    const id = await submit(w.students[0]!.token);
    for (const q of ["wait=61", "wait=-1", "wait=abc"]) {
      const r = await h.call("GET", `/v1/submissions/${id}?${q}`, { token: w.students[0]!.token });
      expect([q, r.statusCode, r.json().error.code]).toEqual([q, 400, "VALIDATION_ERROR"]);
    }
    const zero = await h.call("GET", `/v1/submissions/${id}?wait=0`, { token: w.students[0]!.token });
    expect([zero.statusCode, zero.json().status]).toEqual([200, "queued"]);
  });

  it("answers after the wait when nothing happens, with the same body as a plain GET", async () => {
    const token = w.students[0]!.token;
    const id = await submit(token);
    const { value: res, ms } = await timed(h.call("GET", `/v1/submissions/${id}?wait=1.5`, { token }));
    expect(res.statusCode).toBe(200);
    expect(ms).toBeGreaterThanOrEqual(1400);
    expect(ms).toBeLessThan(4000);
    const plain = await h.call("GET", `/v1/submissions/${id}`, { token });
    expect(res.json()).toEqual(plain.json());
    expect(res.json().status).toBe("queued");
    expect(h.app.events.listeners).toBe(0);
  });

  it("a student cannot long-poll a classmate's submission: 404 at once, nothing held", async () => {
    const id = await submit(w.students[0]!.token);
    const { value: res, ms } = await timed(h.call("GET", `/v1/submissions/${id}?wait=30`, { token: w.students[1]!.token }));
    expect([res.statusCode, res.json().error.code]).toEqual([404, "NOT_FOUND"]);
    expect(ms).toBeLessThan(2000);
    expect(h.app.events.listeners).toBe(0);
  });

  it("returns as soon as a worker grades the submission, long before the wait ends; a graded one answers at once", async () => {
    const token = w.students[0]!.token;
    const id = await submit(token, 42);
    const staffWait = timed(h.call("GET", `/v1/submissions/${id}?wait=30`, { token: w.instructor.token }));
    const own = timed(h.call("GET", `/v1/submissions/${id}?wait=30`, { token }));
    await until(() => h.app.events.listeners === 2);
    const worker = h.startWorker();
    const [staff, mine] = await Promise.all([staffWait, own]);
    // Woken by the worker's event, not by a re-read: the answer left within a moment of the grade's commit.
    const late = Date.now() - new Date(mine.value.json().gradedAt).getTime();
    expect(late).toBeLessThan(1000);
    for (const { value, ms } of [staff, mine]) {
      expect(value.statusCode).toBe(200);
      expect(["graded", "rejected"]).toContain(value.json().status);
      expect(ms).toBeLessThan(15_000);
    }
    // Visibility as without wait: staff see the answer, the student does not.
    expect(staff.value.json().answer).toEqual({ value: 42 });
    expect(mine.value.json().answer).toBeUndefined();
    const again = await timed(h.call("GET", `/v1/submissions/${id}?wait=30`, { token }));
    expect([again.value.json().status, again.ms < 1000]).toEqual([mine.value.json().status, true]);
    expect(h.app.events.listeners).toBe(0);
    await worker.close();
  }, 30_000);

  it("shutdown answers held long-polls at once instead of keeping the API open", async () => {
    const other = await buildApp({ config: h.config, db: h.db, queue: h.queue });
    const token = w.students[1]!.token;
    const id = await submit(token);
    const held = timed(
      other.inject({ method: "GET", url: `/v1/submissions/${id}?wait=30`, headers: { authorization: `Bearer ${token}` } }),
    );
    await until(() => other.events.listeners === 1);
    const closing = timed(other.close());
    const { value: res, ms } = await held;
    expect([res.statusCode, res.json().status]).toEqual([200, "queued"]);
    expect(ms).toBeLessThan(3000);
    expect((await closing).ms).toBeLessThan(3000);
    expect(other.events.listeners).toBe(0);
  });
});
