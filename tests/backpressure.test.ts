import { afterAll, describe, expect, it } from "vitest";
import { createAssignment, createHarness, createWorld, type Harness } from "./helpers/harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const harnesses: Harness[] = [];
afterAll(() => Promise.all(harnesses.map((h) => h.close())));

async function harness(name: string, env: Record<string, string>) {
  const h = await createHarness(name, env);
  harnesses.push(h);
  await h.app.ready();
  return h;
}

function expectOverloaded(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, retryAfter: number) {
  expect(res.statusCode, JSON.stringify(res.json())).toBe(503);
  expect(res.headers["retry-after"]).toBe(String(retryAfter));
  const body = res.json();
  expect(body.error.code).toBe("OVERLOADED");
  expect(body.error.message).toMatch(/retry in \d+ s/);
  expect(body.error.details.retryAfterSeconds).toBe(retryAfter);
}

describe("backpressure", () => {
  it("a blocked event loop turns requests away with 503 OVERLOADED and Retry-After; /healthz still answers", async () => {
    const h = await harness("pressure-loop", {
      PRESSURE_MAX_EVENT_LOOP_DELAY_MS: "20",
      PRESSURE_SAMPLE_MS: "300",
      PRESSURE_RETRY_AFTER_S: "7",
    });
    const blockUntil = Date.now() + 1500;
    while (Date.now() < blockUntil); // a synchronous stall, as an overloaded process has
    await sleep(20); // the overdue sample runs first and sees the stall
    const res = await h.call("GET", "/v1/problem-sets", { token: "whatever" });
    expectOverloaded(res, 7);
    expect(res.json().error.details.reason).toBe("eventLoopDelay");
    expect((await h.call("GET", "/healthz")).statusCode).toBe(200);
    const metrics = await h.call("GET", "/metrics");
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(/autograder_http_overloaded_total\{reason="eventLoopDelay"\} [1-9]/);
  });

  it("past the heap threshold every API route answers 503 before doing any work; the probes still answer", async () => {
    const h = await harness("pressure-heap", { PRESSURE_MAX_HEAP_MB: "1", PRESSURE_SAMPLE_MS: "10", PRESSURE_RETRY_AFTER_S: "3" });
    await sleep(50);
    expectOverloaded(await h.call("POST", "/v1/courses", { token: "x", body: { slug: "c", title: "c" } }), 3);
    expectOverloaded(await h.call("GET", "/v1/problem-sets", { token: "x" }), 3);
    expect((await h.call("GET", "/healthz")).statusCode).toBe(200);
    expect((await h.call("GET", "/readyz")).statusCode).toBe(200);
    expect(await h.db.course.count()).toBe(0);
  });
});

describe("queue metrics", () => {
  it("/metrics shows the queue's depth by state and the age and count of submissions waiting in Postgres", async () => {
    const h = await harness("queue-metrics", {});
    const w = await createWorld(h, { students: 1 });
    await h.loadSet("tests/fixtures/sets/grader-zoo");
    const assignmentId = await createAssignment(h, w, { problemSet: "grader-zoo", maxAttempts: 5 });
    const gauge = (body: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(body)?.[1]);

    let body = (await h.call("GET", "/metrics")).body;
    expect(gauge(body, "autograder_grading_queued_submissions")).toBe(0);
    expect(gauge(body, "autograder_grading_oldest_queued_seconds")).toBe(0);

    // No worker runs: the submissions wait.
    for (const answer of [{ selected: ["red"] }, { selected: ["dog"] }]) {
      const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/single-choice/submissions`, {
        token: w.students[0]!.token,
        body: { answer },
      });
      expect(res.statusCode).toBe(202);
    }
    await sleep(1100);
    body = (await h.call("GET", "/metrics")).body;
    expect(gauge(body, "autograder_grading_queued_submissions")).toBe(2);
    expect(gauge(body, "autograder_grading_oldest_queued_seconds")).toBeGreaterThanOrEqual(1);
    expect(body).toMatch(/^autograder_grading_queue_jobs\{state="waiting"\} 2$/m);
    expect(body).toMatch(/^autograder_grading_queue_jobs\{state="active"\} 0$/m);
    expect(body).toMatch(/^autograder_grading_queue_jobs\{state="delayed"\} 0$/m);
  });
});
