import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { buildApp } from "../src/app.ts";
import { startWorkerHttp } from "../src/grading/worker-http.ts";
import { isDatabaseUnavailable } from "../src/lib/prisma-errors.ts";
import { NotFoundError } from "../src/errors.ts";
import { admin } from "./helpers/databases.ts";
import { ADMIN_TOKEN, createAssignment, createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

// Issue 7, item 9: the smaller items, each proven against real Postgres, Redis and processes.

let h: Harness;
let w: World;
const apps: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  h = await createHarness("security_misc", { TOKEN_MAX_DAYS: "30" });
  await h.loadSet("tests/fixtures/sets/grader-zoo");
}, 60_000);
afterAll(async () => {
  for (const a of apps) await a.close();
  await h?.close();
});

const submitUrl = (assignment: string, problem: string) => `/v1/assignments/${assignment}/problems/${problem}/submissions`;

describe("ADMIN_TOKEN bootstraps once", () => {
  it("works until an admin user holds a token, then is refused forever, even with every admin token revoked", async () => {
    expect((await h.call("GET", "/v1/me", { token: ADMIN_TOKEN })).json()).toMatchObject({ role: "admin", id: null });
    w = await createWorld(h, { students: 2 }); // makes the first admin and its token with ADMIN_TOKEN
    const retired = await h.call("GET", "/v1/me", { token: ADMIN_TOKEN });
    expect(retired.statusCode).toBe(401);
    expect(retired.json().error).toMatchObject({
      code: "BOOTSTRAP_TOKEN_RETIRED",
      message: expect.stringContaining("npm run admin:token"),
    });
    expect(await h.db.setting.findUnique({ where: { key: "bootstrap.retired" } })).not.toBeNull();

    await h.db.apiToken.updateMany({ where: { user: { role: "admin" } }, data: { revokedAt: new Date() } });
    expect((await h.call("GET", "/v1/me", { token: ADMIN_TOKEN })).json().error.code).toBe("BOOTSTRAP_TOKEN_RETIRED");
    expect((await h.call("GET", "/v1/me", { token: w.adminToken })).json().error.code).toBe("TOKEN_REVOKED");
  });

  it("`npm run admin:token` (a real process) is the way back in: it finds the admin by email and prints a working token", async () => {
    const adminEmail = "admin-dl-101@example.org";
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", "scripts/admin-token.ts", ...args], {
          env: { ...process.env, DATABASE_URL: h.config.DATABASE_URL, LOG_LEVEL: "silent" },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("exit", (code) => resolve({ code, out, err }));
      });
    const usage = await run([]);
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/--email is required/);

    const found = await run(["--email", adminEmail.toUpperCase(), "--name", "recovery"]);
    expect(found.code, found.err).toBe(0);
    const token = found.out.trim();
    expect(token).toMatch(/^agt_[\w-]{40,}$/);
    expect(found.err).toMatch(/token 'recovery' expires/);
    const me = await h.call("GET", "/v1/me", { token });
    expect(me.json()).toMatchObject({ email: adminEmail, role: "admin" });
    w.adminToken = token;
    // A student's email: made admin (the operator on the server decides), with an audit record.
    const promoted = await run(["--email", "student1-dl-101@example.org"]);
    expect(promoted.code, promoted.err).toBe(0);
    expect(promoted.err).toMatch(/made admin/);
    expect(await h.db.auditEvent.count({ where: { action: "user.promote" } })).toBe(1);
    await h.db.user.update({ where: { email: "student1-dl-101@example.org" }, data: { role: "user" } });
    // ADMIN_TOKEN stays retired.
    expect((await h.call("GET", "/v1/me", { token: ADMIN_TOKEN })).statusCode).toBe(401);
  }, 60_000);

  it("a database from before the flag: an admin token already issued retires ADMIN_TOKEN on first use", async () => {
    await h.db.setting.delete({ where: { key: "bootstrap.retired" } });
    expect((await h.call("GET", "/v1/me", { token: ADMIN_TOKEN })).json().error.code).toBe("BOOTSTRAP_TOKEN_RETIRED");
    expect(await h.db.setting.findUnique({ where: { key: "bootstrap.retired" } })).not.toBeNull();
  });
});

describe("TOKEN_MAX_DAYS", () => {
  it("self-minted tokens expire by default after the maximum; asking for longer is a 422 that says the maximum", async () => {
    const s = w.students[0]!;
    const made = await h.call("POST", `/v1/users/${s.id}/tokens`, { token: s.token, body: { name: "laptop" } });
    expect(made.statusCode).toBe(201);
    const days = (new Date(made.json().expiresAt).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    expect((await h.call("POST", `/v1/users/${s.id}/tokens`, { token: s.token, body: { name: "a", expiresInDays: 30 } })).statusCode).toBe(
      201,
    );
    const tooLong = await h.call("POST", `/v1/users/${s.id}/tokens`, { token: s.token, body: { name: "b", expiresInDays: 31 } });
    expect(tooLong.statusCode).toBe(422);
    expect(tooLong.json().error).toMatchObject({
      code: "TOKEN_LIFETIME_TOO_LONG",
      message: expect.stringContaining("30 days"),
      details: { max: 30 },
    });
  });
});

describe("Idempotency-Key is scoped to (user, assignment, problem)", () => {
  it("the same key on another problem or assignment is a new submission; on the same problem with another body a 409", async () => {
    const [a1, a2] = [
      await createAssignment(h, w, { problemSet: "grader-zoo" }),
      await createAssignment(h, w, { problemSet: "grader-zoo" }),
    ];
    const t = w.students[0]!.token;
    const send = (assignment: string, problem: string, answer: unknown) =>
      h.call("POST", submitUrl(assignment, problem), { token: t, body: { answer }, headers: { "idempotency-key": "retry-1" } });
    const first = await send(a1, "single-choice", { selected: ["red"] });
    expect(first.statusCode, first.body).toBe(202);
    const again = await send(a1, "single-choice", { selected: ["red"] });
    expect(again.json().id).toBe(first.json().id);
    expect(again.headers["idempotent-replayed"]).toBe("true");

    const otherProblem = await send(a1, "numeric-fixed", { value: 3 });
    expect(otherProblem.statusCode, otherProblem.body).toBe(202);
    expect(otherProblem.json().id).not.toBe(first.json().id);
    const otherAssignment = await send(a2, "single-choice", { selected: ["red"] });
    expect(otherAssignment.statusCode).toBe(202);
    expect(otherAssignment.json().id).not.toBe(first.json().id);
    expect(otherAssignment.headers["idempotent-replayed"]).toBeUndefined();

    const reused = await send(a1, "single-choice", { selected: ["dog"] });
    expect(reused.statusCode).toBe(409);
    expect(reused.json().error.code).toBe("IDEMPOTENCY_KEY_REUSED");
    // Another student's same key is theirs alone.
    const mate = await h.call("POST", submitUrl(a1, "single-choice"), {
      token: w.students[1]!.token,
      body: { answer: { selected: ["red"] } },
      headers: { "idempotency-key": "retry-1" },
    });
    expect(mate.statusCode).toBe(202);
    expect(mate.json().id).not.toBe(first.json().id);
  });
});

describe("failed submissions use no attempt", () => {
  it("an infrastructure failure or GRADER_TIMEOUT gives the attempt back; attempt numbers stay unique", async () => {
    const a = await createAssignment(h, w, { problemSet: "grader-zoo", maxAttempts: 1 });
    const t = w.students[0]!.token;
    const send = () => h.call("POST", submitUrl(a, "single-choice"), { token: t, body: { answer: { selected: ["red"] } } });
    const first = await send();
    expect(first.json().attempt).toBe(1);
    expect((await send()).json().error.code).toBe("ATTEMPTS_EXHAUSTED");
    // The grader ran out of its budget on the problem's own logic: the worker marks it failed.
    await h.db.submission.update({ where: { id: first.json().id }, data: { status: "failed", lastErrorCode: "GRADER_TIMEOUT" } });
    const second = await send();
    expect(second.statusCode, second.body).toBe(202);
    expect(second.json().attempt).toBe(2);
    const third = await send();
    expect(third.statusCode).toBe(409);
    expect(third.json().error).toMatchObject({ code: "ATTEMPTS_EXHAUSTED", details: { used: 1, max: 1 } });
  });
});

describe("security headers", () => {
  it("every response carries helmet's headers, and Swagger UI at /docs still loads all its assets", async () => {
    for (const [url, token] of [
      ["/healthz", undefined],
      ["/v1/me", w.students[0]!.token],
      ["/v1/me", undefined],
      ["/v1/nowhere", undefined],
    ] as const) {
      const res = await h.call("GET", url, { token });
      expect(res.headers["x-content-type-options"], url).toBe("nosniff");
      expect(res.headers["content-security-policy"], url).toMatch(/default-src 'self'/);
      expect(res.headers["x-frame-options"], url).toBe("SAMEORIGIN");
      expect(res.headers["strict-transport-security"], url).toMatch(/max-age=/);
    }
    const page = await h.call("GET", "/docs/");
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/swagger-ui/i);
    const csp = page.headers["content-security-policy"] as string;
    expect(csp).toMatch(/script-src 'self'/);
    // The CSP allows only same-origin scripts: the page must have no inline script, and every asset must load.
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>\s*\S/);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => new URL(m[1]!, "http://x/docs/").pathname);
    expect(assets.length).toBeGreaterThanOrEqual(4);
    for (const asset of [...assets, "/docs/json"]) {
      const res = await h.call("GET", asset);
      expect(res.statusCode, asset).toBe(200);
    }
    const init = await h.call("GET", "/docs/static/swagger-initializer.js");
    expect(init.statusCode).toBe(200);
  });
});

describe("METRICS_TOKEN", () => {
  const METRICS_TOKEN = "metrics-secret-0123456789abcdef";

  it("protects the API's /metrics when set", async () => {
    const app = await buildApp({ config: { ...h.config, METRICS_TOKEN }, db: h.db, queue: h.queue });
    apps.push(app);
    const get = (authorization?: string) => app.inject({ method: "GET", url: "/metrics", headers: authorization ? { authorization } : {} });
    expect((await get()).json().error.code).toBe("METRICS_TOKEN_REQUIRED");
    expect((await get("Bearer wrong-wrong-wrong-wrong")).statusCode).toBe(401);
    expect((await get(`Bearer ${w.students[0]!.token}`)).statusCode).toBe(401);
    const ok = await get(`Bearer ${METRICS_TOKEN}`);
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain("autograder_http_request_duration_seconds");
    expect((await h.call("GET", "/metrics")).statusCode).toBe(200); // unset: open, as before
  });

  it("protects the worker's own /metrics when set; /healthz stays open", async () => {
    const server = await startWorkerHttp(0, "127.0.0.1", METRICS_TOKEN);
    apps.push({ close: () => new Promise((r) => server.close(r)) });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: "Bearer nope" } })).status).toBe(401);
    const ok = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("# TYPE");
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe("docker-compose", () => {
  it("publishes neither Postgres nor Redis beyond the compose network", async () => {
    const compose = parse(await readFile("docker-compose.yml", "utf8"));
    expect(compose.services.postgres.ports).toBeUndefined();
    expect(compose.services.redis.ports).toBeUndefined();
    expect(compose.services.api.ports).toBeDefined();
  });
});

describe("a database outage", () => {
  it("is a 503 DEPENDENCY_UNAVAILABLE with Retry-After, never a 404, in routes and in the services behind them", async () => {
    const a = await createAssignment(h, w, { problemSet: "grader-zoo" });
    const s = w.students[0]!;
    const sub = (await h.call("POST", submitUrl(a, "numeric-fixed"), { token: s.token, body: { answer: { value: 1 } } })).json();
    const principal = { userId: s.id, role: "user" as const, tokenId: null };
    const other = { userId: w.students[1]!.id, role: "user" as const, tokenId: null };
    const database = new URL(h.config.DATABASE_URL).pathname.slice(1);
    await admin(
      `ALTER DATABASE "${database}" ALLOW_CONNECTIONS false`,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}'`,
    );
    try {
      for (const url of [`/v1/submissions/${sub.id}`, `/v1/assignments/${a}/submissions`, "/v1/problem-sets/grader-zoo", "/v1/me"]) {
        const res = await h.call("GET", url, { token: s.token });
        expect(res.statusCode, `${url}: ${res.body}`).toBe(503);
        expect(res.json().error).toMatchObject({ code: "DEPENDENCY_UNAVAILABLE", details: { dependency: "postgres" } });
        expect(res.headers["retry-after"]).toBe("5");
      }
      // A student whose submit context this process kept (their earlier submission) gets as far as the insert.
      const again = await h.call("POST", submitUrl(a, "numeric-fixed"), { token: s.token, body: { answer: { value: 1 } } });
      expect(again.statusCode, again.body).toBe(503);
      expect(again.json().error).toMatchObject({ code: "DEPENDENCY_UNAVAILABLE", details: { dependency: "postgres" } });
      // Past authentication, the services no longer turn a failed lookup into "not found".
      for (const call of [
        () => h.app.services.submissions.get(principal, sub.id),
        () => h.app.services.submissions.list(principal, a, {}),
        // Another student: no kept context, so the context is read (and fails).
        () => h.app.services.submissions.authorize(other, { assignmentId: a, problemSlug: "numeric-fixed", sendsModel: false }),
      ]) {
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).not.toBeInstanceOf(NotFoundError);
        expect(isDatabaseUnavailable(err)).toBe(true);
      }
    } finally {
      await admin(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS true`);
    }
    expect((await h.call("GET", `/v1/submissions/${sub.id}`, { token: s.token })).statusCode).toBe(200);
  });
});
