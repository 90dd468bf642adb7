/**
 * The authorization matrix: every route × every kind of caller → the status they get, against real Postgres.
 * The table is the documentation (README, Security): `AUTHZ_MATRIX_MD=path npx vitest run tests/authz-matrix.test.ts`
 * writes it as Markdown. A route the table does not cover fails the test, so no new route can skip it.
 */
import { writeFile } from "node:fs/promises";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { multipart } from "./helpers/bundles.ts";
import { createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";
import { assign, enroll, mkCourse, mkUser, type Person } from "./helpers/people.ts";
import { choiceBundle, uploadBundle } from "./helpers/set-bundles.ts";

const CALLERS = ["anonymous", "student", "otherStudent", "ta", "instructor", "otherInstructor", "admin"] as const;
type Caller = (typeof CALLERS)[number];
const LABEL: Record<Caller, string> = {
  anonymous: "anonymous",
  student: "student",
  otherStudent: "student, other course",
  ta: "TA",
  instructor: "instructor",
  otherInstructor: "instructor, other course",
  admin: "admin",
};

interface Request {
  url: string;
  body?: unknown;
  form?: FormData;
}
interface Row {
  /** As Fastify registered it: `METHOD /path/:param`. */
  route: string;
  /** The rule, in words, for the README. */
  who: string;
  /** Expected status per caller, in CALLERS order. */
  expect: [number, number, number, number, number, number, number];
  request(c: Caller): Request | Promise<Request>;
}

let h: Harness;
let a: World;
let people: Record<Exclude<Caller, "anonymous">, Person>;
let classmate: Person;
let coOwner: Person;
let assignmentA: string;
let submissionA: string;
let n = 0;
const unique = () => `${Date.now().toString(36)}${n++}`;

const PUBLIC = [200, 200, 200, 200, 200, 200, 200] as Row["expect"];
const ANY_USER = [401, 200, 200, 200, 200, 200, 200] as Row["expect"];
const ADMIN_ONLY = (created: number) => [401, 403, 403, 403, 403, 403, created] as Row["expect"];
/** The student themself or an admin; nobody else learns the user exists. */
const SELF = (ok: number) => [401, ok, 404, 404, 404, 404, ok] as Row["expect"];
const get = (url: string) => () => ({ url });

const ROWS: Row[] = [
  { route: "GET /healthz", who: "anyone", expect: PUBLIC, request: get("/healthz") },
  { route: "GET /readyz", who: "anyone", expect: PUBLIC, request: get("/readyz") },
  { route: "GET /metrics", who: "anyone (unless METRICS_TOKEN is set)", expect: PUBLIC, request: get("/metrics") },
  { route: "GET /openapi.json", who: "anyone", expect: PUBLIC, request: get("/openapi.json") },
  { route: "GET /docs", who: "anyone", expect: PUBLIC, request: get("/docs") },
  { route: "GET /docs/", who: "anyone", expect: PUBLIC, request: get("/docs/") },
  {
    route: "GET /docs/static/index.html",
    who: "anyone (redirects to /docs/)",
    expect: [302, 302, 302, 302, 302, 302, 302],
    request: get("/docs/static/index.html"),
  },
  { route: "GET /docs/static/swagger-initializer.js", who: "anyone", expect: PUBLIC, request: get("/docs/static/swagger-initializer.js") },
  { route: "GET /docs/*", who: "anyone", expect: PUBLIC, request: get("/docs/static/swagger-ui.css") },
  { route: "GET /docs/json", who: "anyone", expect: PUBLIC, request: get("/docs/json") },
  { route: "GET /docs/yaml", who: "anyone", expect: PUBLIC, request: get("/docs/yaml") },

  {
    route: "POST /v1/users",
    who: "admin",
    expect: ADMIN_ONLY(201),
    request: () => ({ url: "/v1/users", body: { email: `u-${unique()}@example.org`, name: "u" } }),
  },
  { route: "GET /v1/me", who: "any user", expect: ANY_USER, request: get("/v1/me") },
  {
    route: "POST /v1/users/:userId/tokens",
    who: "the user, admin",
    expect: SELF(201),
    request: () => ({ url: `/v1/users/${people.student.id}/tokens`, body: { name: "matrix" } }),
  },
  {
    route: "GET /v1/users/:userId/tokens",
    who: "the user, admin",
    expect: SELF(200),
    request: () => ({ url: `/v1/users/${people.student.id}/tokens` }),
  },
  {
    route: "DELETE /v1/users/:userId/tokens/:tokenId",
    who: "the user, admin",
    expect: SELF(204),
    request: async () => {
      const spare = await h.call("POST", `/v1/users/${people.student.id}/tokens`, { token: people.admin.token, body: { name: "spare" } });
      return { url: `/v1/users/${people.student.id}/tokens/${spare.json().id}` };
    },
  },
  {
    route: "POST /v1/courses",
    who: "admin",
    expect: ADMIN_ONLY(201),
    request: () => ({ url: "/v1/courses", body: { slug: `c-${unique()}`, title: "c" } }),
  },
  {
    route: "PUT /v1/courses/:courseId/enrollments/:userId",
    who: "instructor of the course, admin",
    expect: [401, 403, 404, 403, 200, 404, 200],
    request: () => ({ url: `/v1/courses/${a.courseId}/enrollments/${classmate.id}`, body: { role: "student" } }),
  },
  {
    route: "POST /v1/courses/:courseId/assignments",
    who: "instructor of the course, admin",
    expect: [401, 403, 404, 403, 201, 404, 201],
    request: () => ({ url: `/v1/courses/${a.courseId}/assignments`, body: { problemSet: "grader-zoo" } }),
  },
  {
    route: "GET /v1/courses/:courseId/assignments",
    who: "course members, admin",
    expect: [401, 200, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/courses/${a.courseId}/assignments` }),
  },
  { route: "GET /v1/problem-sets", who: "any user (lists what they may read)", expect: ANY_USER, request: get("/v1/problem-sets") },
  {
    route: "POST /v1/problem-sets",
    who: "instructors, admin; a new revision: its owners, admin",
    expect: [401, 403, 403, 403, 201, 403, 201],
    request: async (c) => ({ url: "/v1/problem-sets", form: multipart("bundle", "s.tar.gz", await ownedSetBundle(c)) }),
  },
  {
    route: "GET /v1/problem-sets/:slug",
    who: "who may read the set",
    expect: [401, 200, 404, 200, 200, 404, 200],
    request: get("/v1/problem-sets/a-set"),
  },
  {
    route: "GET /v1/problem-sets/:slug/owners",
    who: "its owners, admin",
    expect: [401, 403, 404, 403, 200, 404, 200],
    request: get("/v1/problem-sets/a-set/owners"),
  },
  {
    route: "PUT /v1/problem-sets/:slug/owners/:userId",
    who: "its owners, admin",
    expect: [401, 403, 404, 403, 200, 404, 200],
    request: () => ({ url: `/v1/problem-sets/a-set/owners/${coOwner.id}` }),
  },
  {
    route: "DELETE /v1/problem-sets/:slug/owners/:userId",
    who: "its owners, admin",
    expect: [401, 403, 404, 403, 204, 404, 204],
    request: async () => {
      const problemSetId = (await h.db.problemSet.findUniqueOrThrow({ where: { slug: "a-set" } })).id;
      await h.db.problemSetOwner.createMany({ data: [{ problemSetId, userId: coOwner.id }], skipDuplicates: true });
      return { url: `/v1/problem-sets/a-set/owners/${coOwner.id}` };
    },
  },
  {
    route: "POST /v1/assignments/:assignmentId/problems/:problemSlug/submissions",
    who: "course members, admin",
    expect: [401, 202, 404, 202, 202, 404, 202],
    request: () => ({ url: `/v1/assignments/${assignmentA}/problems/pick/submissions`, body: { answer: { selected: ["red"] } } }),
  },
  {
    route: "GET /v1/submissions/:id",
    who: "its author, course staff, admin",
    expect: [401, 200, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/submissions/${submissionA}` }),
  },
  {
    route: "GET /v1/assignments/:assignmentId/submissions",
    who: "course members (students: their own), admin",
    expect: [401, 200, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/assignments/${assignmentA}/submissions` }),
  },
  {
    route: "POST /v1/submissions/:id/regrade",
    who: "course staff, admin",
    expect: [401, 403, 404, 202, 202, 404, 202],
    request: () => ({ url: `/v1/submissions/${submissionA}/regrade` }),
  },
  // --- gradebook: scores of record, extensions, assignment view (G1) ---
  {
    route: "GET /v1/assignments/:assignmentId",
    who: "course members (students once it opened), admin",
    expect: [401, 200, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/assignments/${assignmentA}` }),
  },
  {
    route: "PATCH /v1/assignments/:assignmentId",
    who: "instructor of the course, admin",
    expect: [401, 403, 404, 403, 200, 404, 200],
    request: () => ({ url: `/v1/assignments/${assignmentA}`, body: { title: `A ${unique()}` } }),
  },
  {
    route: "GET /v1/assignments/:assignmentId/grades",
    who: "course staff (everyone), students (their own), admin",
    expect: [401, 200, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/assignments/${assignmentA}/grades` }),
  },
  {
    route: "GET /v1/assignments/:assignmentId/extensions",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/assignments/${assignmentA}/extensions` }),
  },
  {
    route: "PUT /v1/assignments/:assignmentId/extensions/:userId",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/assignments/${assignmentA}/extensions/${classmate.id}`, body: { extraAttempts: 1 } }),
  },
  {
    route: "DELETE /v1/assignments/:assignmentId/extensions/:userId",
    who: "course staff, admin",
    expect: [401, 403, 404, 204, 204, 404, 204],
    request: async () => {
      await h.db.extension.createMany({
        data: [{ assignmentId: assignmentA, userId: classmate.id, extraAttempts: 2 }],
        skipDuplicates: true,
      });
      return { url: `/v1/assignments/${assignmentA}/extensions/${classmate.id}` };
    },
  },
  // --- gradebook: regrades, overrides, review queue, revisions (G2) ---
  {
    route: "POST /v1/assignments/:assignmentId/revision",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/assignments/${assignmentA}/revision`, body: {} }),
  },
  {
    route: "POST /v1/assignments/:assignmentId/regrade",
    who: "course staff, admin",
    expect: [401, 403, 404, 202, 202, 404, 202],
    request: () => ({ url: `/v1/assignments/${assignmentA}/regrade`, body: { problem: "pick" } }),
  },
  {
    route: "GET /v1/regrades/:id",
    who: "staff of its course, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: async () => {
      const r = await h.call("POST", `/v1/submissions/${submissionA}/regrade`, { token: people.instructor.token });
      return { url: `/v1/regrades/${r.json().regradeId}` };
    },
  },
  {
    route: "PUT /v1/submissions/:id/grade",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/submissions/${submissionA}/grade`, body: { score: 1, comment: "matrix" } }),
  },
  {
    route: "DELETE /v1/submissions/:id/grade",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/submissions/${submissionA}/grade` }),
  },
  {
    route: "GET /v1/submissions/:id/grade-history",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/submissions/${submissionA}/grade-history` }),
  },
  {
    route: "GET /v1/assignments/:assignmentId/review",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/assignments/${assignmentA}/review` }),
  },
  {
    route: "POST /v1/assignments/:assignmentId/review/groups/:groupId/grade",
    who: "course staff, admin (409 here: the group id is not a current group)",
    expect: [401, 403, 404, 409, 409, 404, 409],
    request: () => ({ url: `/v1/assignments/${assignmentA}/review/groups/${"0".repeat(32)}/grade`, body: { score: 1, comment: "all" } }),
  },
  // --- gradebook: exports and statistics (G3) ---
  {
    route: "GET /v1/courses/:courseId/grades",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/courses/${a.courseId}/grades?format=csv` }),
  },
  {
    route: "GET /v1/courses/:courseId/statistics",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/courses/${a.courseId}/statistics` }),
  },
  // --- LTI: registration, keys, launch, deep linking, scoped tokens (L1) ---
  { route: "GET /lti/jwks.json", who: "anyone (the tool's public keys)", expect: PUBLIC, request: get("/lti/jwks.json") },
  { route: "GET /lti/config.json", who: "anyone (Canvas tool configuration)", expect: PUBLIC, request: get("/lti/config.json") },
  {
    route: "GET /lti/login",
    who: "the platform (OIDC login initiation; a bearer token changes nothing)",
    expect: [302, 302, 302, 302, 302, 302, 302],
    request: async () => {
      const p = await h.db.ltiPlatform.upsert({
        where: { issuer_clientId: { issuer: "https://lms.matrix.example", clientId: "matrix" } },
        create: {
          issuer: "https://lms.matrix.example",
          clientId: "matrix",
          deploymentIds: ["1"],
          authLoginUrl: "https://lms.matrix.example/auth",
          authTokenUrl: "https://lms.matrix.example/token",
          jwksUrl: "https://lms.matrix.example/jwks",
        },
        update: { disabledAt: null },
      });
      const q = new URLSearchParams({
        iss: p.issuer,
        client_id: p.clientId,
        login_hint: "u1",
        target_link_uri: `${h.config.PUBLIC_URL}/lti/launch`,
      });
      return { url: `/lti/login?${q}` };
    },
  },
  {
    route: "POST /lti/login",
    who: "the platform (a bearer token changes nothing)",
    expect: [302, 302, 302, 302, 302, 302, 302],
    request: () => ({
      url: "/lti/login",
      body: {
        iss: "https://lms.matrix.example",
        client_id: "matrix",
        login_hint: "u1",
        target_link_uri: `${h.config.PUBLIC_URL}/lti/launch`,
      },
    }),
  },
  {
    route: "POST /lti/launch",
    who: "the platform's form post (400 here: no id_token; a bearer token changes nothing)",
    expect: [400, 400, 400, 400, 400, 400, 400],
    request: () => ({ url: "/lti/launch", body: { state: "none" } }),
  },
  {
    route: "POST /lti/deep-link",
    who: "an instructor with a deep-linking launch's session token (403 for any other token)",
    expect: [401, 403, 403, 403, 403, 403, 403],
    request: () => ({ url: "/lti/deep-link", body: { problemSet: "a-set" } }),
  },
  {
    route: "GET /lti/register",
    who: "an LMS admin's browser, opened by the platform (400 here: no openid_configuration)",
    expect: [400, 400, 400, 400, 400, 400, 400],
    request: get("/lti/register"),
  },
  {
    route: "POST /v1/lti/platforms",
    who: "admin",
    expect: ADMIN_ONLY(201),
    request: () => ({
      url: "/v1/lti/platforms",
      body: {
        issuer: "https://lms.matrix.example",
        clientId: `c-${unique()}`,
        deploymentIds: ["1"],
        authLoginUrl: "https://lms.matrix.example/auth",
        authTokenUrl: "https://lms.matrix.example/token",
        jwksUrl: "https://lms.matrix.example/jwks",
      },
    }),
  },
  { route: "GET /v1/lti/platforms", who: "admin", expect: ADMIN_ONLY(200), request: get("/v1/lti/platforms") },
  {
    route: "PATCH /v1/lti/platforms/:platformId",
    who: "admin",
    expect: ADMIN_ONLY(200),
    request: async () => {
      const p = await h.db.ltiPlatform.findFirstOrThrow({ where: { issuer: "https://lms.matrix.example", clientId: "matrix" } });
      return { url: `/v1/lti/platforms/${p.id}`, body: { deploymentIds: ["1", "2"] } };
    },
  },
  {
    route: "DELETE /v1/lti/platforms/:platformId",
    who: "admin",
    expect: ADMIN_ONLY(204),
    request: async () => {
      const p = await h.db.ltiPlatform.create({
        data: {
          issuer: "https://lms.matrix.example",
          clientId: `d-${unique()}`,
          deploymentIds: [],
          authLoginUrl: "https://a.example",
          authTokenUrl: "https://a.example",
          jwksUrl: "https://a.example",
        },
      });
      return { url: `/v1/lti/platforms/${p.id}` };
    },
  },
  { route: "GET /v1/lti/keys", who: "admin", expect: ADMIN_ONLY(200), request: get("/v1/lti/keys") },
  {
    route: "POST /v1/lti/keys/rotate",
    who: "admin",
    expect: ADMIN_ONLY(201),
    request: () => ({ url: "/v1/lti/keys/rotate", body: { graceHours: 1 } }),
  },
  {
    route: "POST /v1/courses/:courseId/tokens",
    who: "instructor of the course, admin",
    expect: [401, 403, 404, 403, 201, 404, 201],
    request: () => ({ url: `/v1/courses/${a.courseId}/tokens`, body: { name: "matrix", scope: "grades:read" } }),
  },
  {
    route: "GET /v1/courses/:courseId/tokens",
    who: "instructor of the course, admin",
    expect: [401, 403, 404, 403, 200, 404, 200],
    request: () => ({ url: `/v1/courses/${a.courseId}/tokens` }),
  },
  {
    route: "DELETE /v1/courses/:courseId/tokens/:tokenId",
    who: "instructor of the course, admin",
    expect: [401, 403, 404, 403, 204, 404, 204],
    request: async () => {
      const spare = await h.call("POST", `/v1/courses/${a.courseId}/tokens`, {
        token: people.admin.token,
        body: { name: "spare", scope: "grades:read" },
      });
      return { url: `/v1/courses/${a.courseId}/tokens/${spare.json().id}` };
    },
  },
  // --- LTI: AGS, NRPS, passback, roster (L2) ---
  {
    route: "POST /v1/courses/:courseId/roster/sync",
    who: "course staff, admin",
    expect: [401, 403, 404, 202, 202, 404, 202],
    request: () => ({ url: `/v1/courses/${a.courseId}/roster/sync` }),
  },
  {
    route: "GET /v1/courses/:courseId/enrollments",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/courses/${a.courseId}/enrollments` }),
  },
  {
    route: "GET /v1/courses/:courseId/passbacks",
    who: "course staff, admin",
    expect: [401, 403, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/courses/${a.courseId}/passbacks?status=dead` }),
  },
  {
    route: "POST /v1/courses/:courseId/passbacks/:id/retry",
    who: "instructor of the course, admin",
    expect: [401, 403, 404, 403, 202, 404, 202],
    request: async () => {
      // A dead letter of course A (an LTI link made directly: the matrix tests who may retry, not passback itself).
      const platform = await h.db.ltiPlatform.upsert({
        where: { issuer_clientId: { issuer: "https://lms.matrix.example", clientId: "matrix" } },
        update: {},
        create: {
          issuer: "https://lms.matrix.example",
          clientId: "matrix",
          deploymentIds: ["1"],
          authLoginUrl: "https://lms.matrix.example/auth",
          authTokenUrl: "https://lms.matrix.example/token",
          jwksUrl: "https://lms.matrix.example/jwks",
        },
      });
      const context = await h.db.ltiContext.upsert({
        where: { platformId_contextId: { platformId: platform.id, contextId: "matrix-a" } },
        update: {},
        create: { platformId: platform.id, contextId: "matrix-a", courseId: a.courseId, deploymentId: "1", scopes: [] },
      });
      const row = await h.db.scorePassback.create({
        data: {
          contextRowId: context.id,
          assignmentId: assignmentA,
          userId: people.student.id,
          scoreGiven: 1,
          scoreMaximum: 2,
          status: "dead",
          lastStatus: 400,
        },
      });
      return { url: `/v1/courses/${a.courseId}/passbacks/${row.id}/retry` };
    },
  },
  // (P3) event streams; ?duration ends the stream so that inject() returns
  {
    route: "GET /v1/assignments/:assignmentId/events",
    who: "course members (students: their own submissions' events), admin",
    expect: [401, 200, 404, 200, 200, 404, 200],
    request: () => ({ url: `/v1/assignments/${assignmentA}/events?duration=0.2` }),
  },
];

/** A changed revision of the instructor's own set, so that an allowed upload really writes one. */
const ownedSetBundle = (c: Caller) => choiceBundle("a-set", { correct: ["red"], title: `a-set by ${c}` });

/** Every route the app serves, from Fastify's own route tree; HEAD comes with each GET and is answered by it. */
function servedRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  const prefixes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/u.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    const path = (prefixes[depth - 1] ?? "") + m[2]!;
    prefixes[depth] = path;
    prefixes.length = depth + 1;
    for (const method of (m[3] ?? "").split(", ").filter(Boolean)) if (method !== "HEAD") routes.push(`${method} ${path}`);
  }
  return routes.sort();
}

async function call(c: Caller, row: Row) {
  const [method] = row.route.split(" ");
  const req = await row.request(c);
  const headers: Record<string, string> = c === "anonymous" ? {} : { authorization: `Bearer ${people[c].token}` };
  return h.app.inject({ method: method as "GET", url: req.url, headers, payload: (req.form ?? req.body) as never });
}

beforeAll(async () => {
  h = await createHarness("authz_matrix");
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  a = await createWorld(h, { students: 2, course: "course-a" });
  classmate = a.students[1]!;
  const ta = await enroll(h, a.adminToken, a.courseId, await mkUser(h, a.adminToken, "ta-a@example.org"), "ta");
  const courseB = await mkCourse(h, a.adminToken, "course-b");
  const otherInstructor = await enroll(h, a.adminToken, courseB, await mkUser(h, a.adminToken, "prof-b@example.org"), "instructor");
  const otherStudent = await enroll(h, a.adminToken, courseB, await mkUser(h, a.adminToken, "student-b@example.org"), "student");
  coOwner = await mkUser(h, a.adminToken, "co-owner@example.org");
  const admin = { id: "", token: a.adminToken };
  people = { student: a.students[0]!, otherStudent, ta, instructor: a.instructor, otherInstructor, admin };

  expect((await uploadBundle(h, a.instructor.token, await ownedSetBundle("instructor"))).statusCode).toBe(201);
  assignmentA = await assign(h, a.instructor.token, a.courseId, { problemSet: "a-set" });
  const sub = await h.call("POST", `/v1/assignments/${assignmentA}/problems/pick/submissions`, {
    token: people.student.token,
    body: { answer: { selected: ["red"] } },
  });
  submissionA = sub.json().id;
});
afterAll(async () => {
  if (process.env.AUTHZ_MATRIX_MD) await writeFile(process.env.AUTHZ_MATRIX_MD, markdown());
  await h?.close();
});

describe("authorization matrix", () => {
  it("covers every route the app serves, and only those", () => {
    const served = servedRoutes(h.app);
    expect(served.length).toBeGreaterThan(20); // the route tree was read at all
    expect(ROWS.map((r) => r.route).sort()).toEqual(served);
  });

  it.each(ROWS.map((r) => [r.route, r] as const))("%s", async (_, row) => {
    const got: number[] = [];
    for (const c of CALLERS) {
      const res = await call(c, row);
      got.push(res.statusCode);
      if (res.statusCode >= 400) expect(res.json(), `${row.route} as ${c}`).toMatchObject({ error: { code: expect.any(String) } });
    }
    expect(Object.fromEntries(CALLERS.map((c, i) => [c, got[i]]))).toEqual(Object.fromEntries(CALLERS.map((c, i) => [c, row.expect[i]])));
  });
});

/** The table as the README prints it. */
function markdown(): string {
  const head = `| route | who | ${CALLERS.map((c) => LABEL[c]).join(" | ")} |\n|---|---|${CALLERS.map(() => "---|").join("")}\n`;
  const body = ROWS.map((r) => {
    const route = r.route.replace(/:(\w+)/g, "{$1}");
    return `| \`${route}\` | ${r.who} | ${r.expect.join(" | ")} |`;
  }).join("\n");
  return `${head}${body}\n\n${ROWS.length} routes × ${CALLERS.length} callers = ${ROWS.length * CALLERS.length} checks.\n`;
}
