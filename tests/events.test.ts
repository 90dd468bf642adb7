import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.ts";
import { redactedRequest } from "../src/routes/events.ts";
import { createAssignment, createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

// Issue 12, "Clients need not poll": GET /v1/assignments/{id}/events streams Server-Sent Events fed by Redis pub/sub.
// Two API instances: clients stream from instance B while the submission goes through instance A and a worker.

let h: Harness;
let w: World;
let assignmentId: string;
let b: FastifyInstance;
let base: string;

beforeAll(async () => {
  h = await createHarness("events");
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  w = await createWorld(h, { students: 2 });
  assignmentId = await createAssignment(h, w, { problemSet: "grader-zoo" });
  b = await buildApp({ config: h.config, db: h.db, queue: h.queue });
  base = await b.listen({ port: 0, host: "127.0.0.1" });
  h.startWorker();
}, 60_000);

afterAll(async () => {
  await b?.close();
  await h?.close();
});

interface Frame {
  event: string;
  data: Record<string, unknown>;
}

/** An SSE client on instance B: frames parsed as they arrive. */
async function stream(query: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const res = await fetch(`${base}/v1/assignments/${assignmentId}/events${query}`, { headers, signal: abort.signal });
  const frames: Frame[] = [];
  let text = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = text.indexOf("\n\n")) >= 0) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) frames.push({ event, data: JSON.parse(data) });
        }
      }
    } catch {
      /* aborted */
    }
  })();
  return { res, frames, close: () => abort.abort(), reading };
}

async function until(cond: () => boolean, ms = 15_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function submit(token: string, value: number): Promise<string> {
  const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/numeric-fixed/submissions`, {
    token,
    body: { answer: { value } },
  });
  expect(res.statusCode, res.body).toBe(202);
  return res.json().id;
}

describe("assignment event stream", () => {
  it("refuses like the assignment: 401 without a token, 404 outside the course; ?access_token works on this route only", async () => {
    expect((await fetch(`${base}/v1/assignments/${assignmentId}/events`)).status).toBe(401);
    const outsider = await fetch(`${base}/v1/assignments/${assignmentId}/events?access_token=${w.adminToken}x`);
    expect(outsider.status).toBe(401);
    const me = await fetch(`${base}/v1/me?access_token=${w.students[0]!.token}`);
    expect(me.status).toBe(401);
    const elsewhere = await fetch(`${base}/v1/assignments/00000000-0000-4000-8000-000000000000/events`, {
      headers: { authorization: `Bearer ${w.students[0]!.token}` },
    });
    expect([elsewhere.status, (await elsewhere.json()).error.code]).toEqual([404, "NOT_FOUND"]);
  });

  it("a grade done through instance A and a worker reaches streams on instance B; a student gets only their own events", async () => {
    const staff = await stream("", { authorization: `Bearer ${w.instructor.token}` });
    const alice = await stream(`?access_token=${w.students[0]!.token}`);
    const bob = await stream(`?access_token=${w.students[1]!.token}`);
    for (const s of [staff, alice, bob]) {
      expect(s.res.status).toBe(200);
      expect(s.res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    }
    await until(() => b.events.listeners === 3);

    const id = await submit(w.students[0]!.token, 1);
    await until(() => alice.frames.some((f) => f.event === "grade"));
    await until(() => staff.frames.some((f) => f.event === "submission" && f.data.id === id && f.data.status !== "queued"));
    const done = (await h.call("GET", `/v1/submissions/${id}`, { token: w.students[0]!.token })).json();
    // First the new submission (queued), then its result.
    const about = alice.frames.filter((f) => f.event === "submission" && f.data.id === id);
    expect(about[0]!.data).toEqual({ id, status: "queued", problem: "numeric-fixed", userId: w.students[0]!.id });
    const mine = about.at(-1)!;
    expect(mine.data).toEqual({
      id,
      status: done.status,
      problem: "numeric-fixed",
      userId: w.students[0]!.id,
      score: done.score,
      maxScore: done.maxScore,
    });
    expect(alice.frames.filter((f) => f.event === "grade").map((f) => f.data)).toEqual([{ assignmentId, userId: w.students[0]!.id }]);
    expect(staff.frames.find((f) => f.event === "grade")?.data).toEqual({ assignmentId, userId: w.students[0]!.id });

    // Bob saw nothing of Alice's; his own submission reaches him (and staff) but not her.
    const bobs = await submit(w.students[1]!.token, 2);
    await until(() => bob.frames.some((f) => f.event === "submission" && f.data.id === bobs));
    await until(() => staff.frames.some((f) => f.event === "submission" && f.data.id === bobs));
    await new Promise((r) => setTimeout(r, 300));
    expect(bob.frames.every((f) => f.data.userId === w.students[1]!.id)).toBe(true);
    expect(alice.frames.every((f) => f.data.userId === w.students[0]!.id)).toBe(true);

    // Clients leaving take their subscriptions with them.
    for (const s of [staff, alice, bob]) s.close();
    await until(() => b.events.listeners === 0, 5000);
  }, 60_000);

  it("?duration ends the stream; closing the API ends open streams at once", async () => {
    const t0 = Date.now();
    const short = await stream("?duration=0.3", { authorization: `Bearer ${w.instructor.token}` });
    await short.reading;
    expect(Date.now() - t0).toBeLessThan(3000);

    const c = await buildApp({ config: h.config, db: h.db, queue: h.queue });
    const url = await c.listen({ port: 0, host: "127.0.0.1" });
    const res = await fetch(`${url}/v1/assignments/${assignmentId}/events`, { headers: { authorization: `Bearer ${w.instructor.token}` } });
    expect(res.status).toBe(200);
    const body = res.text();
    await until(() => c.events.listeners === 1);
    const t1 = Date.now();
    await c.close();
    await body;
    expect(Date.now() - t1).toBeLessThan(3000);
    expect(c.events.listeners).toBe(0);
  });
});

describe("request logs", () => {
  it("never carry the ?access_token of an event stream", () => {
    const logged = redactedRequest({ method: "GET", url: "/v1/assignments/a/events?access_token=secret-value&duration=5", ip: "1.2.3.4" });
    expect(logged).toEqual({
      method: "GET",
      url: "/v1/assignments/a/events?access_token=[redacted]&duration=5",
      host: undefined,
      remoteAddress: "1.2.3.4",
    });
  });
});
