import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, createAssignment, createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

let h: Harness;
let w: World;
let open: string;

const DAY = 86_400_000;
const iso = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
const submitUrl = (a: string, p = "single-choice") => `/v1/assignments/${a}/problems/${p}/submissions`;
const rows = () => h.db.submission.count();

function expectError(res: { statusCode: number; json(): any }, status: number, code: string) {
  expect(res.statusCode, JSON.stringify(res.json())).toBe(status);
  const body = res.json();
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/); // no stack traces
  return body.error;
}

beforeAll(async () => {
  h = await createHarness("bad_input", { BODY_LIMIT_BYTES: "20000" });
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  w = await createWorld(h, { students: 2 });
  open = await createAssignment(h, w, { problemSet: "grader-zoo" });
});
afterAll(() => h?.close());

describe("malformed requests", () => {
  it("malformed JSON is a 400 that says so", async () => {
    const res = await h.app.inject({
      method: "POST",
      url: submitUrl(open),
      headers: { authorization: `Bearer ${w.students[0]!.token}`, "content-type": "application/json" },
      payload: '{"answer": {',
    });
    expectError(res, 400, "MALFORMED_JSON");
  });

  it("a wrong content type is a 415", async () => {
    const res = await h.app.inject({
      method: "POST",
      url: submitUrl(open),
      headers: { authorization: `Bearer ${w.students[0]!.token}`, "content-type": "text/plain" },
      payload: "red",
    });
    expectError(res, 415, "UNSUPPORTED_MEDIA_TYPE");
  });

  it("unknown fields are named in a 400", async () => {
    const res = await h.call("POST", "/v1/courses", { token: w.adminToken, body: { slug: "x", title: "X", colour: "red" } });
    const err = expectError(res, 400, "VALIDATION_ERROR");
    expect(err.message).toMatch(/colour/);
  });

  it("bad field values come with their path", async () => {
    const res = await h.call("POST", "/v1/users", { token: w.adminToken, body: { email: "not-an-email", name: "" } });
    const err = expectError(res, 400, "VALIDATION_ERROR");
    const paths = err.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(["body.email", "body.name"]));
  });

  it("an oversized body is a 413", async () => {
    const before = await rows();
    const res = await h.call("POST", submitUrl(open, "short-text"), {
      token: w.students[0]!.token,
      body: { answer: { text: "x".repeat(30_000) } },
    });
    expectError(res, 413, "PAYLOAD_TOO_LARGE");
    expect(await rows()).toBe(before);
  });

  it("an answer of the wrong shape for the problem's type is a 400 with the path", async () => {
    const before = await rows();
    for (const [problem, answer] of [
      ["single-choice", { value: 3 }],
      ["numeric-fixed", { value: "three" }],
      ["tensor-random", { value: "[[1]]" }],
      ["expression", { expression: 42 }],
      ["short-text", "just a string"],
    ] as const) {
      const err = expectError(
        await h.call("POST", submitUrl(open, problem), { token: w.students[0]!.token, body: { answer } }),
        400,
        "INVALID_ANSWER",
      );
      expect(err.details.issues.length).toBeGreaterThan(0);
    }
    expect(await rows()).toBe(before);
  });

  it("unknown or malformed ids are 404 / 400, unknown routes a 404 in the same shape", async () => {
    const t = w.students[0]!.token;
    expectError(await h.call("POST", submitUrl(open, "no-such-problem"), { token: t, body: { answer: {} } }), 404, "NOT_FOUND");
    expectError(
      await h.call("POST", submitUrl("00000000-0000-4000-8000-000000000000"), { token: t, body: { answer: {} } }),
      404,
      "NOT_FOUND",
    );
    expectError(await h.call("GET", "/v1/submissions/not-a-uuid", { token: t }), 400, "VALIDATION_ERROR");
    expectError(await h.call("GET", "/v1/problem-sets/nope", { token: t }), 404, "NOT_FOUND");
    expectError(await h.call("GET", "/v1/nothing-here", { token: t }), 404, "ROUTE_NOT_FOUND");
  });

  it("conflicting creates are 409s; impossible assignments 422s", async () => {
    expectError(
      await h.call("POST", "/v1/courses", { token: w.adminToken, body: { slug: "dl-101", title: "again" } }),
      409,
      "COURSE_SLUG_TAKEN",
    );
    expectError(
      await h.call("POST", "/v1/users", { token: w.adminToken, body: { email: "STUDENT0-dl-101@example.org", name: "dup" } }),
      409,
      "EMAIL_TAKEN",
    );
    const url = `/v1/courses/${w.courseId}/assignments`;
    expectError(await h.call("POST", url, { token: w.instructor.token, body: { problemSet: "no-such-set" } }), 422, "UNKNOWN_PROBLEM_SET");
    const err = expectError(
      await h.call("POST", url, { token: w.instructor.token, body: { problemSet: "grader-zoo", dueAt: iso(DAY), lateUntil: iso(-DAY) } }),
      422,
      "INVALID_SCHEDULE",
    );
    expect(err.details[0].field).toBe("lateUntil");
    expectError(
      await h.call("POST", url, { token: w.instructor.token, body: { problemSet: "grader-zoo", dueAt: "tomorrow" } }),
      400,
      "VALIDATION_ERROR",
    );
  });
});

describe("tokens", () => {
  it("missing, unknown, revoked and expired tokens each get their own 401", async () => {
    expectError(await h.call("GET", "/v1/problem-sets"), 401, "UNAUTHORIZED");
    expectError(await h.call("GET", "/v1/problem-sets", { token: "agt_nope" }), 401, "INVALID_TOKEN");

    const s = w.students[1]!;
    const created = (
      await h.call("POST", `/v1/users/${s.id}/tokens`, { token: s.token, body: { name: "laptop", expiresInDays: 1 } })
    ).json();
    expect((await h.call("GET", "/v1/me", { token: created.token })).statusCode).toBe(200);
    expect((await h.call("DELETE", `/v1/users/${s.id}/tokens/${created.id}`, { token: s.token })).statusCode).toBe(204);
    expectError(await h.call("GET", "/v1/me", { token: created.token }), 401, "TOKEN_REVOKED");

    const other = (await h.call("POST", `/v1/users/${s.id}/tokens`, { token: s.token, body: { name: "old" } })).json();
    await h.db.apiToken.update({ where: { id: other.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expectError(await h.call("GET", "/v1/me", { token: other.token }), 401, "TOKEN_EXPIRED");
  });

  it("the bootstrap ADMIN_TOKEN retires once an admin user exists", async () => {
    expectError(await h.call("GET", "/v1/me", { token: ADMIN_TOKEN }), 401, "BOOTSTRAP_TOKEN_RETIRED");
  });

  it("a user cannot mint tokens for someone else (and cannot learn they exist)", async () => {
    const [a, b] = w.students as [World["students"][0], World["students"][0]];
    expectError(await h.call("POST", `/v1/users/${b.id}/tokens`, { token: a.token, body: { name: "steal" } }), 404, "NOT_FOUND");
  });
});

describe("submission windows and attempts", () => {
  it("before opensAt and after lateUntil are refused with their own codes; late work keeps a penalised fraction", async () => {
    const t = w.students[0]!.token;
    const before = await rows();
    const notYet = await createAssignment(h, w, { problemSet: "grader-zoo", opensAt: iso(DAY) });
    expectError(await h.call("POST", submitUrl(notYet), { token: t, body: { answer: { selected: ["red"] } } }), 403, "ASSIGNMENT_NOT_OPEN");
    const closed = await createAssignment(h, w, {
      problemSet: "grader-zoo",
      opensAt: iso(-3 * DAY),
      dueAt: iso(-2 * DAY),
      lateUntil: iso(-DAY),
    });
    expectError(await h.call("POST", submitUrl(closed), { token: t, body: { answer: { selected: ["red"] } } }), 403, "ASSIGNMENT_CLOSED");
    expect(await rows()).toBe(before);

    const late = await createAssignment(h, w, {
      problemSet: "grader-zoo",
      dueAt: iso(-DAY - 1000),
      lateUntil: iso(DAY),
      latePenaltyPerDay: 0.25,
    });
    const res = await h.call("POST", submitUrl(late), { token: t, body: { answer: { selected: ["red"] } } });
    expect(res.statusCode).toBe(202);
    const sub = await h.db.submission.findUniqueOrThrow({ where: { id: res.json().id } });
    expect(sub.lateFactor).toBeCloseTo(0.5); // two started days late × 25 %
    // staff try problems out regardless of the window
    expect(
      (await h.call("POST", submitUrl(notYet), { token: w.instructor.token, body: { answer: { selected: ["red"] } } })).statusCode,
    ).toBe(202);
  });

  it("attempts are counted atomically: concurrent submissions cannot both take the last one", async () => {
    const limited = await createAssignment(h, w, { problemSet: "grader-zoo", maxAttempts: 2 });
    const t = w.students[1]!.token;
    const results = await Promise.all(
      Array.from({ length: 6 }, () => h.call("POST", submitUrl(limited), { token: t, body: { answer: { selected: ["red"] } } })),
    );
    const codes = results.map((r) => r.statusCode).sort();
    expect(codes).toEqual([202, 202, 409, 409, 409, 409]);
    const err = expectError(
      results.find((r) => r.statusCode === 409)!,
      409,
      "ATTEMPTS_EXHAUSTED",
    );
    expect(err.details).toEqual({ used: 2, max: 2 });
    expect(err.message).toMatch(/2/);
    const attempts = (await h.db.submission.findMany({ where: { assignmentId: limited } })).map((s) => s.attempt).sort();
    expect(attempts).toEqual([1, 2]);
  });

  it("Idempotency-Key: a retried request returns the first submission; the key cannot be reused for another body", async () => {
    const t = w.students[0]!.token;
    const headers = { "idempotency-key": "retry-me-1" };
    const first = await h.call("POST", submitUrl(open), { token: t, headers, body: { answer: { selected: ["red"] } } });
    const again = await h.call("POST", submitUrl(open), { token: t, headers, body: { answer: { selected: ["red"] } } });
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual(first.json());
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expectError(
      await h.call("POST", submitUrl(open), { token: t, headers, body: { answer: { selected: ["dog"] } } }),
      409,
      "IDEMPOTENCY_KEY_REUSED",
    );
    expect(await h.db.submission.count({ where: { idempotencyKey: "retry-me-1" } })).toBe(1);
  });
});
