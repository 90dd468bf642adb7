import { readFile } from "node:fs/promises";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAssignment, createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

// Issue 7, "Fuzzing": every route in the OpenAPI document, with arbitrary path parameters, query strings,
// bodies and headers, as every kind of caller. Nothing may answer 5xx or crash the process, and a refused
// request must leave every table exactly as it was (no partial rows).

const SEED = 20261201;
const RUNS_PER_ROUTE = 50;

let h: Harness;
let w: World;
interface Pools {
  [param: string]: string[];
}
let pools: Pools;
let callers: Record<string, string | undefined>;
let answers: unknown[];
let tables: string[];
let onnx: Buffer;
const stats = { runs: 0, byStatus: new Map<number, number>(), failed: 0 };

interface Operation {
  method: string;
  path: string;
  params: { in: string; name: string; schema?: Schema }[];
  body?: Schema;
  multipart: boolean;
}
interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  format?: string;
  anyOf?: Schema[];
  oneOf?: Schema[];
}

beforeAll(async () => {
  h = await createHarness("fuzz", { AUTH_FAILURES_PER_MIN: "0", RATE_LIMIT_PER_MIN: "0" });
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  await h.loadSet("tests/fixtures/sets/onnx-basic");
  w = await createWorld(h, { students: 2 });
  const admin = w.adminToken;
  const ok = async (res: Promise<LightMyRequestResponse>) => {
    const r = await res;
    if (r.statusCode >= 300) throw new Error(`${r.statusCode} ${r.body}`);
    return r.json();
  };
  // A second course with its own instructor and student: the "other course" callers.
  const course = await ok(h.call("POST", "/v1/courses", { token: admin, body: { slug: "other-101", title: "Other" } }));
  const mk = async (email: string, role: string) => {
    const u = await ok(h.call("POST", "/v1/users", { token: admin, body: { email, name: email } }));
    await ok(h.call("PUT", `/v1/courses/${course.id}/enrollments/${u.id}`, { token: admin, body: { role } }));
    return {
      id: u.id as string,
      token: (await ok(h.call("POST", `/v1/users/${u.id}/tokens`, { token: admin, body: { name: "t" } }))).token,
    };
  };
  const [otherProf, otherStudent] = [await mk("prof-other@example.org", "instructor"), await mk("student-other@example.org", "student")];
  const assignments = [
    await createAssignment(h, w, { problemSet: "grader-zoo" }),
    await createAssignment(h, w, { problemSet: "onnx-basic", maxAttempts: 2 }),
  ];
  const s = w.students[0]!;
  const sub = await ok(
    h.call("POST", `/v1/assignments/${assignments[0]}/problems/single-choice/submissions`, {
      token: s.token,
      body: { answer: { selected: ["red"] } },
    }),
  );
  // Tokens the fuzzer may revoke: never the callers' own.
  const spare = await ok(h.call("POST", `/v1/users/${s.id}/tokens`, { token: s.token, body: { name: "spare" } }));
  const users = [w.instructor.id, s.id, w.students[1]!.id, otherProf.id, otherStudent.id];
  const uuid = "00000000-0000-4000-8000-000000000000";
  pools = {
    courseId: [w.courseId, course.id, uuid],
    userId: users,
    assignmentId: [...assignments, uuid],
    id: [sub.id, uuid],
    tokenId: [spare.id, uuid],
    slug: ["grader-zoo", "onnx-basic", "nope"],
    problemSlug: ["single-choice", "numeric-fixed", "short-text", "average-colour", "vae-kl", "nope"],
    problemSet: ["grader-zoo", "onnx-basic"],
  };
  answers = [
    { selected: ["red"] },
    { selected: ["red", "dog"] },
    { value: 3 },
    { expression: "2*x" },
    { text: "because" },
    { value: [[1, 2]] },
  ];
  callers = {
    anonymous: undefined,
    garbage: "agt_not-a-real-token",
    malformed: "", // a random Authorization header value, see buildRequest
    student: s.token,
    student2: w.students[1]!.token,
    instructor: w.instructor.token,
    otherStudent: otherStudent.token,
    otherInstructor: otherProf.token,
    admin,
  };
  tables = (
    await h.db.$queryRawUnsafe<{ t: string }[]>(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations' ORDER BY 1`,
    )
  ).map((r) => r.t);
  onnx = await readFile("tests/fixtures/onnx/basic/function/average_colour_ok.onnx");
}, 120_000);
afterAll(() => h?.close());

/** Rows in every table, one round trip. */
async function rowCounts(): Promise<Record<string, number>> {
  const sql = `SELECT ${tables.map((t) => `(SELECT count(*) FROM "${t}")::int AS "${t}"`).join(", ")}`;
  return (await h.db.$queryRawUnsafe<Record<string, number>[]>(sql))[0]!;
}

function operations(): Operation[] {
  const doc = h.app.swagger() as unknown as { paths: Record<string, Record<string, Record<string, unknown>>> };
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(methods)) {
      const content = (op.requestBody as { content?: Record<string, { schema: Schema }> } | undefined)?.content ?? {};
      ops.push({
        method: method.toUpperCase(),
        path,
        params: (op.parameters as Operation["params"]) ?? [],
        body: content["application/json"]?.schema,
        multipart: /submissions$|problem-sets$/.test(path) && method === "post",
      });
    }
  return ops;
}

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.constantFrom("", " ", "../../etc/passwd", "%00", "null", "0", "-1", "1e309", "' OR 1=1 --", "\u0000", "a".repeat(5000)),
);
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);

/** Values shaped by a JSON schema (enough to pass validation sometimes and reach the services), or anything. */
function fromSchema(schema: Schema | undefined, key = "", depth = 0): fc.Arbitrary<unknown> {
  const anything = fc.jsonValue({ maxDepth: 2 });
  if (!schema || depth > 3) return anything;
  const pool = pools[key] as unknown[] | undefined;
  const alternatives: fc.Arbitrary<unknown>[] = [anything];
  if (pool) alternatives.push(fc.constantFrom(...pool));
  if (key === "answer") alternatives.push(fc.constantFrom(...answers));
  if (key === "email") alternatives.push(fc.nat().map((n) => `fuzz${n}@example.org`));
  if (key === "slug") alternatives.push(fc.stringMatching(/^[a-z0-9]{1,12}(-[a-z0-9]{1,6})?$/));
  if (schema.enum) alternatives.push(fc.constantFrom(...schema.enum));
  for (const sub of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) alternatives.push(fromSchema(sub, key, depth + 1));
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  for (const type of types) {
    if (type === "string")
      alternatives.push(
        schema.format === "date-time"
          ? fc.date({ noInvalidDate: true, min: new Date("2020-01-01"), max: new Date("2035-01-01") }).map((d) => d.toISOString())
          : schema.format === "email"
            ? fc.emailAddress()
            : schema.format === "uuid"
              ? fc.uuid()
              : text,
      );
    if (type === "integer") alternatives.push(fc.integer({ min: -5, max: 100_000 }), fc.constantFrom(0, 1, 2, 2 ** 31, -(2 ** 53)));
    if (type === "number") alternatives.push(fc.double(), fc.integer());
    if (type === "boolean") alternatives.push(fc.boolean());
    if (type === "array") alternatives.push(fc.array(fromSchema(schema.items, "", depth + 1), { maxLength: 4 }));
    if (type === "object" && schema.properties) {
      const props = Object.fromEntries(Object.entries(schema.properties).map(([k, s]) => [k, fromSchema(s, k, depth + 1)]));
      alternatives.push(fc.record(props, { requiredKeys: [] }));
      // Every field present, three times over: most likely to be valid and reach the service's writes.
      alternatives.push(fc.record(props), fc.record(props), fc.record(props));
    }
  }
  // Mostly shaped values (to get past validation and into the services), sometimes anything at all.
  return fc.oneof({ arbitrary: anything, weight: 1 }, ...alternatives.slice(1).map((arbitrary) => ({ arbitrary, weight: 4 })));
}

type Payload =
  | { kind: "none" }
  | { kind: "json"; value: unknown }
  | { kind: "raw"; text: string; type: string }
  | { kind: "form"; field: string; bytes: Uint8Array; extra: [string, string][] };

function payloads(op: Operation): fc.Arbitrary<Payload> {
  const options: fc.Arbitrary<Payload>[] = [
    fc.constant({ kind: "none" as const }),
    fromSchema(op.body).map((value) => ({ kind: "json" as const, value })),
    fc.record({
      kind: fc.constant("raw" as const),
      text: fc.oneof(text, fc.constantFrom("{", '{"answer":', "[]", "null", '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}')),
      type: fc.constantFrom(
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
      ),
    }),
  ];
  if (op.multipart)
    options.push(
      fc.record({
        kind: fc.constant("form" as const),
        field: fc.constantFrom("model", "bundle", "file", ""),
        bytes: fc.oneof(
          fc.uint8Array({ maxLength: 2048 }),
          fc.constant(new Uint8Array(onnx)),
          fc.integer({ min: 0, max: onnx.length - 1 }).map((n) => new Uint8Array(onnx.subarray(0, n))),
        ),
        extra: fc.array(fc.tuple(fc.constantFrom("answer", "model", "x", "__proto__"), fc.string({ maxLength: 20 })), { maxLength: 3 }),
      }),
    );
  // Shaped JSON bodies most often: they get past validation and into the services' transactions.
  return fc.oneof(...options.map((arbitrary, i) => ({ arbitrary, weight: i === 1 ? 4 : 1 })));
}

function request(op: Operation) {
  const pathParams = op.params.filter((p) => p.in === "path");
  const queryParams = op.params.filter((p) => p.in === "query");
  return fc.record({
    caller: fc.constantFrom(...Object.keys(callers)),
    path: fc.tuple(
      ...pathParams.map((p) =>
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...(pools[p.name] ?? ["x"])) },
          { weight: 1, arbitrary: text },
          { weight: 1, arbitrary: fc.uuid() },
        ),
      ),
    ),
    query: fc.array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...queryParams.map((p) => p.name), "x", "__proto__", "userId"), fc.string({ maxLength: 8 })),
        fc.oneof(text, fc.constantFrom(...Object.values(pools).flat())),
      ),
      { maxLength: 3 },
    ),
    authorization: headerValue,
    headers: fc.array(
      fc.tuple(
        fc.constantFrom(
          "idempotency-key",
          "x-forwarded-for",
          "accept",
          "accept-encoding",
          "content-length",
          "cookie",
          "x-http-method-override",
          "transfer-encoding",
        ),
        headerValue,
      ),
      { maxLength: 3 },
    ),
    payload: payloads(op),
  });
}

function buildRequest(
  op: Operation,
  r: { caller: string; path: string[]; query: [string, string][]; authorization: string; headers: [string, string][]; payload: Payload },
) {
  let i = 0;
  const url = op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(r.path[i++] ?? ""));
  // Holding routes are fuzzed like any other, but briefly: an event stream ends after 0.2 s, a long-poll waits 1 s at most.
  const query = r.query.filter(([k]) => !(k === "duration" && op.path.endsWith("/events")));
  if (op.path.endsWith("/events")) query.push(["duration", "0.2"]);
  for (const q of query) if (q[0] === "wait" && Number(q[1]) > 1) q[1] = "1";
  const qs = new URLSearchParams(query).toString();
  const headers: Record<string, string> = {};
  const token = callers[r.caller];
  if (token) headers.authorization = `Bearer ${token}`;
  if (r.caller === "malformed") headers.authorization = r.authorization;
  // Framing headers would describe a body other than the one sent: a client bug, not a request to fuzz.
  for (const [k, v] of r.headers) if (k !== "content-length" && k !== "transfer-encoding") headers[k] = v;
  let payload: string | FormData | undefined;
  if (r.payload.kind === "json") {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(r.payload.value) ?? "null";
  } else if (r.payload.kind === "raw") {
    headers["content-type"] = r.payload.type;
    payload = r.payload.text;
  } else if (r.payload.kind === "form") {
    const form = new FormData();
    for (const [k, v] of r.payload.extra) form.append(k, v);
    form.append(r.payload.field, new Blob([r.payload.bytes as Uint8Array<ArrayBuffer>]), "upload.bin");
    payload = form;
  }
  return { method: op.method as "GET", url: qs ? `${url}?${qs}` : url, headers, payload: payload as string | undefined };
}

describe("fuzzing every route", () => {
  it("no 5xx, no crash and no partial rows, for every route and caller", async () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThanOrEqual(20);
    const started = Date.now();
    const failures: string[] = [];
    let problem = "";
    for (const [n, op] of ops.entries()) {
      await fc
        .assert(
          fc.asyncProperty(request(op), async (r) => {
            const req = buildRequest(op, r);
            const before = await rowCounts();
            const res = await h.app.inject(req);
            stats.runs++;
            stats.byStatus.set(res.statusCode, (stats.byStatus.get(res.statusCode) ?? 0) + 1);
            const where = `${op.method} ${req.url.slice(0, 160)} as ${r.caller} (${r.payload.kind}) → ${res.statusCode} ${res.body.slice(0, 200)}`;
            const fail = (what: string) => {
              problem = `${what}: ${where}`.slice(0, 600);
              throw new Error(problem);
            };
            if (res.statusCode >= 500) fail("5xx");
            if (res.statusCode >= 400) {
              const body = JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown } };
              if (typeof body.error?.code !== "string" || typeof body.error.message !== "string") fail("not the error shape");
              const after = await rowCounts();
              const changed = tables.filter((t) => after[t] !== before[t]);
              if (changed.length) fail(`rows changed in ${changed.join(", ")} on a refused request`);
            }
          }),
          { seed: SEED + n, numRuns: RUNS_PER_ROUTE, endOnFailure: true },
        )
        .catch(() => failures.push(problem));
    }
    const alive = await h.app.inject({ method: "GET", url: "/healthz" });
    const statuses = [...stats.byStatus.entries()].sort(([a], [b]) => a - b).map(([s, c]) => `${s}×${c}`);
    console.log(
      `fuzz: ${stats.runs} runs over ${ops.length} routes × ${Object.keys(callers).length} callers in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${SEED}); statuses ${statuses.join(" ")}; failures ${failures.length}`,
    );
    expect(failures).toEqual([]);
    expect(alive.statusCode).toBe(200);
  }, 240_000);
});
