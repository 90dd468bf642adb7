import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.ts";
import type { Config } from "../src/config.ts";
import { createAssignment, createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

// Issue 7, item 7: limits that hold. Failed authentications per client address, requests per token id,
// X-Forwarded-For only from named proxies, and model uploads refused or capped before their body is read.

let h: Harness;
let w: World;
let other: { token: string };
let dir: string;
const apps: FastifyInstance[] = [];

/** Another API instance on the same database, queue prefix and Redis: limits must be shared with it. */
async function instance(overrides: Partial<Config>) {
  const app = await buildApp({ config: { ...h.config, ...overrides }, db: h.db, queue: h.queue });
  apps.push(app);
  return app;
}

const me = (app: FastifyInstance, from: string, authorization?: string, headers: Record<string, string> = {}) =>
  app.inject({ method: "GET", url: "/v1/me", remoteAddress: from, headers: { ...(authorization ? { authorization } : {}), ...headers } });

const guess = () => `Bearer agt_${Math.random().toString(36).slice(2)}${Date.now()}`;

/** Counts statements that write to any table, with a statement-level trigger on every table of this database. */
async function installWriteCounter() {
  await h.db.$executeRawUnsafe(`CREATE TABLE h4_writes (tbl text, op text)`);
  await h.db.$executeRawUnsafe(
    `CREATE FUNCTION h4_count_write() RETURNS trigger AS $$ BEGIN INSERT INTO h4_writes VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$ LANGUAGE plpgsql`,
  );
  await h.db.$executeRawUnsafe(`DO $$ DECLARE t text; BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'h4_writes' LOOP
      EXECUTE format('CREATE TRIGGER h4_w AFTER INSERT OR UPDATE OR DELETE ON %I FOR EACH STATEMENT EXECUTE FUNCTION h4_count_write()', t);
    END LOOP; END $$`);
}
const writes = async () => Number((await h.db.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM h4_writes`))[0]!.n);

beforeAll(async () => {
  h = await createHarness("limits", { AUTH_FAILURES_PER_MIN: "5" });
  // A set with a model problem whose own budget (100 kB) is below MODEL_MAX_BYTES, and a JSON problem.
  dir = path.join(await mkdtemp(path.join(tmpdir(), "limits-")), "limits-set");
  await cp("tests/fixtures/sets/onnx-basic/average-colour", path.join(dir, "average-colour"), { recursive: true });
  const yaml = await readFile(path.join(dir, "average-colour/problem.yaml"), "utf8");
  await writeFile(path.join(dir, "average-colour/problem.yaml"), `${yaml}  budget: { maxBytes: 100000 }\n`);
  await cp("tests/fixtures/sets/grader-zoo/single-choice", path.join(dir, "single-choice"), { recursive: true });
  await writeFile(path.join(dir, "set.yaml"), "slug: limits-set\ntitle: Limits\nproblems: [average-colour, single-choice]\n");
  await h.loadSet(dir);
  w = await createWorld(h, { students: 1 });
  // A student of another course.
  const call = async (method: string, url: string, body: unknown) => {
    const res = await h.call(method, url, { token: w.adminToken, body });
    if (res.statusCode >= 300) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const course = await call("POST", "/v1/courses", { slug: "other-course", title: "Other" });
  const user = await call("POST", "/v1/users", { email: "outsider@example.org", name: "outsider" });
  await call("PUT", `/v1/courses/${course.id}/enrollments/${user.id}`, { role: "student" });
  other = { token: (await call("POST", `/v1/users/${user.id}/tokens`, { name: "t" })).token };
  await installWriteCounter();
}, 60_000);
afterAll(async () => {
  for (const app of apps) await app.close();
  await h?.close();
  if (dir) await rm(path.dirname(dir), { recursive: true, force: true });
});

describe("failed authentications, per client address", () => {
  it("guessed, malformed, revoked and expired tokens count; past the limit 429 with Retry-After; a valid token still works", async () => {
    const from = "198.51.100.1";
    const student = w.students[0]!;
    const revoked = (await h.call("POST", `/v1/users/${student.id}/tokens`, { token: student.token, body: { name: "r" } })).json();
    await h.call("DELETE", `/v1/users/${student.id}/tokens/${revoked.id}`, { token: student.token });
    const expired = (await h.call("POST", `/v1/users/${student.id}/tokens`, { token: student.token, body: { name: "e" } })).json();
    await h.db.apiToken.update({ where: { id: expired.id }, data: { expiresAt: new Date(Date.now() - 1000) } });

    const refusals = [guess(), "Basic dXNlcjpwYXNz", `Bearer ${revoked.token}`, `Bearer ${expired.token}`, undefined];
    const codes = [];
    for (const auth of refusals) codes.push((await me(h.app, from, auth)).json().error.code);
    expect(codes).toEqual(["INVALID_TOKEN", "UNAUTHORIZED", "TOKEN_REVOKED", "TOKEN_EXPIRED", "UNAUTHORIZED"]);

    const over = await me(h.app, from, guess());
    expect(over.statusCode).toBe(429);
    expect(over.json().error.code).toBe("RATE_LIMITED");
    expect(over.json().error.message).toMatch(/failed authentications/);
    expect(Number(over.headers["retry-after"])).toBeGreaterThan(0);
    expect(Number(over.headers["retry-after"])).toBeLessThanOrEqual(60);
    // Another instance shares the count (Redis), and malformed headers stay refused too.
    const twin = await instance({});
    expect((await me(twin, from, "Bearer")).statusCode).toBe(429);

    // The class behind the same NAT address: valid tokens are never refused for others' failures.
    const ok = await me(twin, from, `Bearer ${student.token}`);
    expect(ok.statusCode, ok.body).toBe(200);
    expect((await me(h.app, from, `Bearer ${w.instructor.token}`)).statusCode).toBe(200);
    // Another address is not affected.
    expect((await me(h.app, "198.51.100.2", guess())).statusCode).toBe(401);
  });

  it("random bearer values get no fresh bucket and a guess costs no database write", async () => {
    const writesBefore = await writes();
    const from = "198.51.100.3";
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await me(h.app, from, guess())).statusCode);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    expect(await writes()).toBe(writesBefore);
    // The counter works: a real write is seen.
    await h.call("POST", "/v1/users", { token: w.adminToken, body: { email: "probe@example.org", name: "probe" } });
    expect(await writes()).toBeGreaterThan(writesBefore);
  });

  it("X-Forwarded-For is ignored unless TRUST_PROXY names the proxy it came through", async () => {
    const proxy = "10.9.0.1";
    const untrusting = await instance({ QUEUE_PREFIX: `${h.config.QUEUE_PREFIX}-xff1` });
    for (let i = 0; i < 5; i++) await me(untrusting, proxy, guess(), { "x-forwarded-for": `203.0.113.${i}` });
    // Forged client addresses do not escape the count: it is the proxy's (the real peer's) address.
    expect((await me(untrusting, proxy, guess(), { "x-forwarded-for": "203.0.113.99" })).statusCode).toBe(429);

    const trusting = await instance({ QUEUE_PREFIX: `${h.config.QUEUE_PREFIX}-xff2`, TRUST_PROXY: "10.9.0.0/24, 192.0.2.7" });
    for (let i = 0; i < 5; i++) await me(trusting, proxy, guess(), { "x-forwarded-for": "203.0.113.50" });
    expect((await me(trusting, proxy, guess(), { "x-forwarded-for": "203.0.113.50" })).statusCode).toBe(429);
    // Behind a trusted proxy each client has its own count...
    expect((await me(trusting, proxy, guess(), { "x-forwarded-for": "203.0.113.51" })).statusCode).toBe(401);
    // ...but a peer that is not a named proxy cannot pick its address with the header.
    for (let i = 0; i < 5; i++) await me(trusting, "198.51.100.9", guess(), { "x-forwarded-for": `203.0.113.${60 + i}` });
    expect((await me(trusting, "198.51.100.9", guess(), { "x-forwarded-for": "203.0.113.70" })).statusCode).toBe(429);
  });
});

describe("requests per token", () => {
  it("are counted per token id across instances, whatever the header's spelling; other tokens are unaffected", async () => {
    const config = { RATE_LIMIT_PER_MIN: 3, QUEUE_PREFIX: `${h.config.QUEUE_PREFIX}-tok` };
    const [a, b] = [await instance(config), await instance(config)];
    const t = w.students[0]!.token;
    expect((await me(a, "198.51.100.20", `Bearer ${t}`)).statusCode).toBe(200);
    expect((await me(b, "198.51.100.21", `bearer   ${t}`)).statusCode).toBe(200);
    expect((await me(a, "198.51.100.22", `BEARER ${t} `)).statusCode).toBe(200);
    const over = await me(b, "198.51.100.23", `Bearer ${t}`);
    expect(over.statusCode).toBe(429);
    expect(over.json().error).toMatchObject({ code: "RATE_LIMITED", message: expect.stringMatching(/more than 3 requests/) });
    expect(Number(over.headers["retry-after"])).toBeGreaterThan(0);
    expect((await me(a, "198.51.100.20", `Bearer ${w.instructor.token}`)).statusCode).toBe(200);
    // Operations are not limited.
    expect((await a.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
  });
});

/** A multipart upload whose file part is `size` bytes, generated as it is read; `consumed()` is what the server pulled. */
function countingUpload(size: number) {
  const boundary = "----limits-boundary";
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="model"; filename="m.onnx"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 7);
  const stream = new Readable({
    read() {
      if (sent === 0) {
        sent += head.length;
        this.push(head);
      } else if (sent < head.length + size) {
        const n = Math.min(chunk.length, head.length + size - sent);
        sent += n;
        this.push(chunk.subarray(0, n));
      } else {
        this.push(tail);
        this.push(null);
      }
    },
  });
  return { stream, contentType: `multipart/form-data; boundary=${boundary}`, consumed: () => sent };
}

describe("model uploads", () => {
  let open: string;
  let later: string;
  beforeAll(async () => {
    open = await createAssignment(h, w, { problemSet: "limits-set" });
    later = await createAssignment(h, w, { problemSet: "limits-set", opensAt: new Date(Date.now() + 86_400_000).toISOString() });
  });

  const post = (assignment: string, problem: string, token: string, size: number) => {
    const body = countingUpload(size);
    const res = h.app.inject({
      method: "POST",
      url: `/v1/assignments/${assignment}/problems/${problem}/submissions`,
      headers: { authorization: `Bearer ${token}`, "content-type": body.contentType },
      payload: body.stream,
    });
    return res.then((r) => ({ res: r, consumed: body.consumed() }));
  };

  it("are refused before the body is read when the caller may not submit there", async () => {
    const MB60 = 60 * 1024 * 1024;
    const cases = [
      { name: "student of another course", call: () => post(open, "average-colour", other.token, MB60), status: 404 },
      { name: "assignment not open yet", call: () => post(later, "average-colour", w.students[0]!.token, MB60), status: 403 },
      { name: "no such problem", call: () => post(open, "nope", w.students[0]!.token, MB60), status: 404 },
      { name: "a JSON problem", call: () => post(open, "single-choice", w.students[0]!.token, MB60), status: 415 },
      { name: "unknown token", call: () => post(open, "average-colour", "agt_unknown", MB60), status: 401 },
    ];
    for (const c of cases) {
      const { res, consumed } = await c.call();
      expect(res.statusCode, `${c.name}: ${res.body}`).toBe(c.status);
      expect(res.json().error.code).toBeTruthy();
      // Nothing but stream buffers (a few 64 kB chunks) was pulled from a 60 MB body.
      expect(consumed, c.name).toBeLessThan(1024 * 1024);
    }
  });

  it("over the problem's own maxBytes is a 413 naming the limit, and nothing is stored", async () => {
    const [blobs, subs] = [await h.db.blob.count(), await h.db.submission.count()];
    const { res, consumed } = await post(open, "average-colour", w.students[0]!.token, 5 * 1024 * 1024);
    expect(res.statusCode, res.body).toBe(413);
    expect(res.json().error).toMatchObject({ code: "PAYLOAD_TOO_LARGE", message: expect.stringContaining("100000 bytes") });
    expect([await h.db.blob.count(), await h.db.submission.count()]).toEqual([blobs, subs]);
    // Reading stopped at the limit: the rest of the 5 MB was never pulled.
    expect(consumed).toBeLessThan(100_000 + 1024 * 1024);
    console.log(`413 upload: the server pulled ${consumed} of ${5 * 1024 * 1024} bytes`);
  });

  it("a model within the limit is streamed, preflighted off the event loop and accepted", async () => {
    const bytes = await readFile("tests/fixtures/onnx/basic/function/average_colour_ok.onnx");
    const form = new FormData();
    form.append("model", new Blob([new Uint8Array(bytes)]), "ok.onnx");
    const res = await h.app.inject({
      method: "POST",
      url: `/v1/assignments/${open}/problems/average-colour/submissions`,
      headers: { authorization: `Bearer ${w.students[0]!.token}` },
      payload: form as never,
    });
    expect(res.statusCode, res.body).toBe(202);
    const bad = await readFile("tests/fixtures/onnx/basic/function/average_colour_bad_name.onnx");
    const form2 = new FormData();
    form2.append("model", new Blob([new Uint8Array(bad)]), "bad.onnx");
    const refused = await h.app.inject({
      method: "POST",
      url: `/v1/assignments/${open}/problems/average-colour/submissions`,
      headers: { authorization: `Bearer ${w.students[0]!.token}` },
      payload: form2 as never,
    });
    expect(refused.statusCode).toBe(422);
    expect(refused.json().error).toMatchObject({ code: "MODEL_REJECTED", details: { reason: "INPUT_MISMATCH" } });
  });
});
