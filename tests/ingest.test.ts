/**
 * The submit path under concurrency and its caches (issue 12): attempt numbers assigned under a per-(assignment,
 * user, problem) lock without retries, the attempt limit and its counting rules in the same statement, the replay of
 * an Idempotency-Key under the same lock, the principal cache's revocation bounds, settings read fresh every time,
 * and rate limits answered 429 with Retry-After.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executeSql, PREPARE_INSERT } from "../src/services/ingest-store.ts";
import { createAssignment, createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";
import { enroll, mkUser, type Person } from "./helpers/people.ts";

const RIGHT = { selected: ["red"] };
const WRONG = { selected: ["dog"] };
const TTL_S = 1;

let h: Harness;
let w: World;
let s0: Person, s1: Person;

const url = (a: string, problem = "single-choice") => `/v1/assignments/${a}/problems/${problem}/submissions`;
const post = (a: string, who: Person, answer: unknown, headers: Record<string, string> = {}, problem = "single-choice") =>
  h.call("POST", url(a, problem), { token: who.token, body: { answer }, headers });
const assign = (body: Record<string, unknown> = {}) => createAssignment(h, w, { problemSet: "grader-zoo", ...body });
const patch = (a: string, body: unknown) => h.call("PATCH", `/v1/assignments/${a}`, { token: w.instructor.token, body });
const burst = <T>(n: number, fn: (i: number) => Promise<T>) => Promise.all(Array.from({ length: n }, (_, i) => fn(i)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codes = (rs: { statusCode: number }[]) =>
  rs.reduce<Record<number, number>>((m, r) => ({ ...m, [r.statusCode]: (m[r.statusCode] ?? 0) + 1 }), {});

beforeAll(async () => {
  h = await createHarness("ingest", { AUTH_CACHE_TTL_S: String(TTL_S) });
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  w = await createWorld(h, { students: 2, course: "in-101" });
  [s0, s1] = w.students as [Person, Person];
});
afterAll(() => h?.close());

describe("one student's burst of 64 concurrent submissions", () => {
  it("without an attempt limit: all 64 accepted, attempts 1..64 each once, 64 audit rows and 64 jobs", async () => {
    const a = await assign();
    const rs = await burst(64, () => post(a, s0, RIGHT));
    expect(codes(rs)).toEqual({ 202: 64 });
    expect(rs.map((r) => r.json().attempt).sort((x, y) => x - y)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    const rows = await h.db.submission.findMany({ where: { assignmentId: a }, orderBy: { attempt: "asc" } });
    expect(rows.map((r) => r.attempt)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    expect(rows.every((r) => r.status === "queued" && r.userId === s0.id && r.answer !== null)).toBe(true);
    const audits = await h.db.auditEvent.findMany({ where: { action: "submission.create", entityId: { in: rows.map((r) => r.id) } } });
    expect(audits).toHaveLength(64);
    expect(audits.every((e) => e.actorId === s0.id)).toBe(true);
    for (const r of rows) expect(await h.queue.getJob(r.id), r.id).toBeTruthy();
  });

  it("with maxAttempts 10: exactly 10 accepted, 54 refused 409 ATTEMPTS_EXHAUSTED (never CONTENDED)", async () => {
    const a = await assign({ maxAttempts: 10 });
    const rs = await burst(64, () => post(a, s0, RIGHT));
    expect(codes(rs)).toEqual({ 202: 10, 409: 54 });
    for (const r of rs.filter((x) => x.statusCode === 409))
      expect(r.json().error).toMatchObject({ code: "ATTEMPTS_EXHAUSTED", details: { used: 10, max: 10 } });
    const rows = await h.db.submission.findMany({ where: { assignmentId: a } });
    expect(rows.map((r) => r.attempt).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Another student's attempts are their own.
    expect((await post(a, s1, RIGHT)).json()).toMatchObject({ attempt: 1 });
  });

  it("one Idempotency-Key sent 16 times at once: one submission, 15 replays; another body under it is 409", async () => {
    const a = await assign({ maxAttempts: 3 });
    const rs = await burst(16, () => post(a, s1, RIGHT, { "idempotency-key": "burst-1" }));
    expect(codes(rs)).toEqual({ 202: 16 });
    expect(new Set(rs.map((r) => r.json().id)).size).toBe(1);
    expect(rs.filter((r) => r.headers["idempotent-replayed"] === "true")).toHaveLength(15);
    expect(await h.db.submission.count({ where: { assignmentId: a } })).toBe(1);
    expect((await post(a, s1, WRONG, { "idempotency-key": "burst-1" })).json().error.code).toBe("IDEMPOTENCY_KEY_REUSED");
    // A replay of the last attempt still answers once the limit is reached.
    await post(a, s1, RIGHT);
    await post(a, s1, RIGHT);
    expect((await post(a, s1, RIGHT)).json().error.code).toBe("ATTEMPTS_EXHAUSTED");
    expect((await post(a, s1, RIGHT, { "idempotency-key": "burst-1" })).json()).toMatchObject({ id: rs[0]!.json().id, attempt: 1 });
  });
});

describe("attempts used, as policy.usesAttempt counts them, and settings read fresh", () => {
  it("failed never counts; rejections per countPrecheckRejections / countRunRejections; a PATCH applies to the next submission", async () => {
    const a = await assign({ maxAttempts: 10 });
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await post(a, s0, RIGHT)).json().id as string);
    // One each: graded, failed (infrastructure), rejected after the model ran, rejected before anything ran.
    const set = (id: string, status: "graded" | "failed" | "rejected", lastErrorCode: string | null) =>
      h.db.submission.update({ where: { id }, data: { status, lastErrorCode } });
    await set(ids[0]!, "graded", null);
    await set(ids[1]!, "failed", "GRADING_FAILED");
    await set(ids[2]!, "rejected", "MODEL_TIMEOUT");
    await set(ids[3]!, "rejected", null);
    const cases: [boolean, boolean, number][] = [
      [false, true, 2], // the defaults: graded + ran
      [true, true, 3],
      [false, false, 1],
      [true, false, 2], // graded + before-run
    ];
    for (const [countPrecheckRejections, countRunRejections, used] of cases) {
      const label = JSON.stringify({ countPrecheckRejections, countRunRejections });
      expect((await patch(a, { countPrecheckRejections, countRunRejections, maxAttempts: used })).statusCode, label).toBe(200);
      const refused = await post(a, s0, RIGHT);
      expect(refused.statusCode, label).toBe(409);
      expect(refused.json().error.details, label).toEqual({ used, max: used });
      expect((await patch(a, { maxAttempts: used + 1 })).statusCode).toBe(200);
      const accepted = await post(a, s0, RIGHT);
      expect(accepted.statusCode, `${label}: ${accepted.body}`).toBe(202);
      expect(accepted.json().attempt).toBe(5); // numbers count every row, failed ones too
      await h.db.submission.delete({ where: { id: accepted.json().id } });
    }
  });

  it("a window closed by another process (a direct UPDATE) refuses the very next submission", async () => {
    const a = await assign();
    expect((await post(a, s1, RIGHT)).statusCode).toBe(202);
    await h.db.assignment.update({ where: { id: a }, data: { dueAt: new Date(Date.now() - 60_000) } });
    expect((await post(a, s1, RIGHT)).json().error.code).toBe("ASSIGNMENT_CLOSED");
  });
});

describe("the context kept from a student's last submission (one round trip fewer) is never acted on once stale", () => {
  it("an extension, a finished exam clock and an unenrolment, each written directly, apply to the very next submission", async () => {
    const a = await assign({ maxAttempts: 2, timeLimitMinutes: 30 });
    expect((await post(a, s1, RIGHT)).statusCode).toBe(202); // starts the exam clock
    expect((await post(a, s1, RIGHT)).statusCode).toBe(202);
    expect((await post(a, s1, RIGHT)).json().error.code).toBe("ATTEMPTS_EXHAUSTED");
    // Extra attempts granted by another process: the kept context (2 attempts) would refuse; the insert finds it stale.
    await h.db.extension.create({ data: { assignmentId: a, userId: s1.id, extraAttempts: 2 } });
    expect((await post(a, s1, RIGHT)).json()).toMatchObject({ attempt: 3 });
    // The exam clock moved back past its limit: the kept context (clock just started) would accept.
    await h.db.examStart.update({
      where: { assignmentId_userId: { assignmentId: a, userId: s1.id } },
      data: { startedAt: new Date(Date.now() - 31 * 60_000) },
    });
    expect((await post(a, s1, RIGHT)).json().error.code).toBe("EXAM_TIME_OVER");
    await h.db.examStart.update({ where: { assignmentId_userId: { assignmentId: a, userId: s1.id } }, data: { startedAt: new Date() } });
    expect((await post(a, s1, RIGHT)).json()).toMatchObject({ attempt: 4 });
    // Unenrolled directly: the assignment is no longer the student's.
    await h.db.enrollment.delete({ where: { courseId_userId: { courseId: w.courseId, userId: s1.id } } });
    expect((await post(a, s1, RIGHT)).statusCode).toBe(404);
    await h.db.enrollment.create({ data: { userId: s1.id, courseId: w.courseId, role: "student" } });
    expect(await h.db.submission.count({ where: { assignmentId: a, userId: s1.id } })).toBe(4);
  });
});

describe("a submission's cost does not grow with the attempts before it", () => {
  /** The most rows any scan of Submission returned while the insert ran (rolled back), from its plan as executed. */
  async function mostRowsScanned(client: pg.Client, args: Parameters<typeof executeSql>[0]): Promise<number> {
    await client.query("BEGIN");
    try {
      const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${executeSql(args, new Date())}`);
      let most = 0;
      const walk = (n: Record<string, any>) => {
        if (n["Relation Name"] === "Submission" && String(n["Node Type"]).includes("Scan"))
          most = Math.max(most, n["Actual Rows"] * n["Actual Loops"]);
        for (const c of n.Plans ?? []) walk(c);
      };
      walk(rows[0]["QUERY PLAN"][0].Plan);
      return most;
    } finally {
      await client.query("ROLLBACK");
    }
  }

  it("without a limit the next attempt is one index read and earlier attempts are not counted; under a limit they are", async () => {
    const a = await assign();
    for (let i = 0; i < 20; i++) expect((await post(a, s1, RIGHT)).statusCode).toBe(202);
    const last = await h.db.submission.findFirstOrThrow({ where: { assignmentId: a, userId: s1.id }, orderBy: { attempt: "desc" } });
    expect(last.attempt).toBe(20);
    const client = new pg.Client({ connectionString: h.config.DATABASE_URL });
    await client.connect();
    try {
      // The plan a long-lived connection settles on after its first executions.
      await client.query("SET plan_cache_mode = force_generic_plan");
      await client.query(PREPARE_INSERT);
      const args = {
        assignmentId: a,
        userId: s1.id,
        problemSlug: last.problemSlug,
        problemId: last.problemId,
        rules: { countPrecheckRejections: false, countRunRejections: true },
        answer: RIGHT,
        seed: last.seed,
        lateFactor: 1,
        requestHash: "plan-check",
        fingerprint: null,
      };
      expect(await mostRowsScanned(client, { ...args, maxAttempts: null })).toBe(1);
      expect(await mostRowsScanned(client, { ...args, maxAttempts: 500 })).toBe(20);
    } finally {
      await client.end();
    }
  });
});

describe("bad input", () => {
  it("an answer Postgres cannot store as text (a NUL character) is a 400, and nothing is written", async () => {
    const a = await assign();
    const res = await post(a, s1, { text: "mode \u0000 collapse" }, {}, "short-text");
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().error.code).toBe("INVALID_ANSWER");
    expect(await h.db.submission.count({ where: { assignmentId: a } })).toBe(0);
  });
});

describe("submissions written together (INGEST_BATCH_MAX)", () => {
  it("a NUL answer among concurrent submissions of two students fails alone; the rest keep their own attempts", async () => {
    const a = await assign();
    // Sent at once, they share statements; the one Postgres refuses takes its statement down, whose others are
    // then written one by one.
    const rs = await burst(12, (i) =>
      i === 5 ? post(a, s1, { text: "mode \u0000 collapse" }, {}, "short-text") : post(a, i % 2 ? s1 : s0, RIGHT),
    );
    expect(rs[5]!.statusCode).toBe(400);
    expect(codes(rs)).toEqual({ 202: 11, 400: 1 });
    const rows = await h.db.submission.findMany({ where: { assignmentId: a } });
    const attempts = (u: string) =>
      rows
        .filter((r) => r.userId === u)
        .map((r) => r.attempt)
        .sort((x, y) => x - y);
    expect(attempts(s0.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(attempts(s1.id)).toEqual([1, 2, 3, 4, 5]);
    expect(await h.db.auditEvent.count({ where: { action: "submission.create", entityId: { in: rows.map((r) => r.id) } } })).toBe(11);
  });
});

describe("the principal cache (AUTH_CACHE_TTL_S)", () => {
  const me = (token: string) => h.call("GET", "/v1/me", { token });
  const newToken = async (who: Person) =>
    (await h.call("POST", `/v1/users/${who.id}/tokens`, { token: who.token, body: { name: "cache" } })).json() as {
      id: string;
      token: string;
    };

  it("a revocation through this process applies at once", async () => {
    const t = await newToken(s0);
    expect((await me(t.token)).statusCode).toBe(200);
    expect((await h.call("DELETE", `/v1/users/${s0.id}/tokens/${t.id}`, { token: s0.token })).statusCode).toBe(204);
    expect((await me(t.token)).json().error.code).toBe("TOKEN_REVOKED");
  });

  it("a revocation by another process (the row updated directly) applies within the TTL", async () => {
    const t = await newToken(s0);
    expect((await me(t.token)).statusCode).toBe(200);
    const revokedAt = Date.now();
    await h.db.apiToken.update({ where: { id: t.id }, data: { revokedAt: new Date() } });
    // Still the cached principal right after (this is the documented bound, not a leak)...
    const soon = await me(t.token);
    if (Date.now() - revokedAt < TTL_S * 1000) expect(soon.statusCode).toBe(200);
    await sleep(TTL_S * 1000 + 50);
    // ...and refused once the entry is older than AUTH_CACHE_TTL_S.
    expect((await me(t.token)).json().error.code).toBe("TOKEN_REVOKED");
  });

  it("an expiry is kept with the cached principal: the token is refused the moment it passes", async () => {
    const t = await newToken(s1);
    await h.db.apiToken.update({ where: { id: t.id }, data: { expiresAt: new Date(Date.now() + 400) } });
    const first = await me(t.token);
    if (first.statusCode === 200) await sleep(450); // cached now, and the expiry passes well within the TTL
    expect((await me(t.token)).json().error.code).toBe("TOKEN_EXPIRED");
  });
});

describe("rate limits on a burst", () => {
  let limited: Harness;
  beforeAll(async () => {
    limited = await createHarness("ingest_limited", { RATE_LIMIT_PER_MIN: "10", AUTH_CACHE_TTL_S: "5" });
    await limited.loadSet("tests/fixtures/sets/grader-zoo");
  });
  afterAll(() => limited?.close());

  it("64 at once from one token with RATE_LIMIT_PER_MIN=10: 10 accepted, 54 answered 429 with Retry-After, no 5xx", async () => {
    const lw = await createWorld(limited, { students: 1, course: "in-lim" });
    const student = lw.students[0]!;
    const a = await createAssignment(limited, lw, { problemSet: "grader-zoo" });
    // A fresh token: the world's setup calls did not count against it.
    const t = (await limited.call("POST", `/v1/users/${student.id}/tokens`, { token: lw.adminToken, body: { name: "burst" } })).json();
    const rs = await burst(64, () => limited.call("POST", url(a), { token: t.token as string, body: { answer: RIGHT } }));
    expect(codes(rs)).toEqual({ 202: 10, 429: 54 });
    for (const r of rs.filter((x) => x.statusCode === 429)) {
      expect(r.json().error.code).toBe("RATE_LIMITED");
      expect(Number(r.headers["retry-after"])).toBeGreaterThan(0);
    }
    const rows = await limited.db.submission.findMany({ where: { assignmentId: a } });
    expect(rows.map((r) => r.attempt).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe("staff", () => {
  it("a TA submits past maxAttempts and a closed window, attempts still numbered without gaps", async () => {
    const ta = await enroll(h, w.adminToken, w.courseId, await mkUser(h, w.adminToken, "ta-in@example.org"), "ta");
    const a = await assign({ maxAttempts: 1, dueAt: new Date(Date.now() - 60_000).toISOString() });
    const rs = await burst(8, () => post(a, ta, RIGHT));
    expect(codes(rs)).toEqual({ 202: 8 });
    expect(rs.map((r) => r.json().attempt).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect((await post(a, s0, RIGHT)).json().error.code).toBe("ASSIGNMENT_CLOSED");
  });
});
