import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAssignment, createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

// Issue 12, "Lists stay cheap": every list endpoint pages (?limit default 100, max 1000; Link rel="next"; the body
// stays an array), found by enumerating the OpenAPI document, so a new list that forgets to page fails here.

let h: Harness;
let w: World;
let assignmentId: string;
/** OpenAPI path → a URL with two or more rows, and who may read it. */
let lists: Record<string, { url: string; token: string }>;

const ok = async (p: ReturnType<Harness["call"]>, status = 200) => {
  const r = await p;
  if (r.statusCode !== status) throw new Error(`${r.statusCode} ${r.body}`);
  return r;
};

beforeAll(async () => {
  h = await createHarness("pagination");
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  await h.loadSet("tests/fixtures/sets/onnx-basic");
  w = await createWorld(h, { students: 3 });
  const staff = w.instructor.token;
  const admin = w.adminToken;
  assignmentId = await createAssignment(h, w, { problemSet: "grader-zoo" });
  await createAssignment(h, w, { problemSet: "onnx-basic" });
  for (const s of w.students.slice(0, 2)) {
    await ok(h.call("PUT", `/v1/assignments/${assignmentId}/extensions/${s.id}`, { token: staff, body: { extraAttempts: 1 } }));
    await ok(
      h.call("POST", `/v1/assignments/${assignmentId}/problems/numeric-fixed/submissions`, {
        token: s.token,
        body: { answer: { value: 1 } },
      }),
      202,
    );
  }
  await ok(h.call("POST", `/v1/users/${w.students[0]!.id}/tokens`, { token: admin, body: { name: "second" } }), 201);
  for (const name of ["lms-a", "lms-b"])
    await ok(h.call("POST", `/v1/courses/${w.courseId}/tokens`, { token: staff, body: { name, scope: "grades:read" } }), 201);
  await ok(h.call("POST", "/v1/lti/keys/rotate", { token: admin, body: {} }), 201);
  await ok(h.call("POST", "/v1/lti/keys/rotate", { token: admin, body: {} }), 201);
  // Rows no public route creates without an LMS: platforms, an LTI context, owners of a set, passbacks.
  const set = await h.db.problemSet.findFirstOrThrow({ where: { slug: "grader-zoo" } });
  await h.db.problemSetOwner.createMany({ data: w.students.map((s) => ({ problemSetId: set.id, userId: s.id })) });
  const platforms = await Promise.all(
    ["a", "b"].map((x) =>
      h.db.ltiPlatform.create({
        data: {
          issuer: `https://${x}.lms`,
          clientId: x,
          deploymentIds: ["1"],
          authLoginUrl: "https://x/a",
          authTokenUrl: "https://x/t",
          jwksUrl: "https://x/j",
        },
      }),
    ),
  );
  const ctx = await h.db.ltiContext.create({
    data: { platformId: platforms[0]!.id, contextId: "c1", courseId: w.courseId, deploymentId: "1", scopes: [] },
  });
  await h.db.scorePassback.createMany({
    data: w.students.map((s) => ({ contextRowId: ctx.id, assignmentId, userId: s.id, scoreGiven: 1, scoreMaximum: 2 })),
  });
  lists = {
    "/v1/problem-sets": { url: "/v1/problem-sets", token: admin },
    "/v1/problem-sets/{slug}/owners": { url: "/v1/problem-sets/grader-zoo/owners", token: admin },
    "/v1/courses/{courseId}/assignments": { url: `/v1/courses/${w.courseId}/assignments`, token: w.students[0]!.token },
    "/v1/courses/{courseId}/enrollments": { url: `/v1/courses/${w.courseId}/enrollments`, token: staff },
    "/v1/courses/{courseId}/passbacks": { url: `/v1/courses/${w.courseId}/passbacks`, token: staff },
    "/v1/courses/{courseId}/tokens": { url: `/v1/courses/${w.courseId}/tokens`, token: staff },
    "/v1/users/{userId}/tokens": { url: `/v1/users/${w.students[0]!.id}/tokens`, token: w.students[0]!.token },
    "/v1/assignments/{assignmentId}/extensions": { url: `/v1/assignments/${assignmentId}/extensions`, token: staff },
    "/v1/assignments/{assignmentId}/submissions": { url: `/v1/assignments/${assignmentId}/submissions`, token: staff },
    "/v1/lti/platforms": { url: "/v1/lti/platforms", token: admin },
    "/v1/lti/keys": { url: "/v1/lti/keys", token: admin },
  };
}, 120_000);

afterAll(async () => {
  await h?.close();
});

const linkOf = (header: unknown) => (typeof header === "string" ? /^<([^>]+)>; rel="next"$/.exec(header)?.[1] : undefined);
const keyOf = (row: Record<string, unknown>) => String(row.id ?? row.userId ?? row.slug ?? row.kid);

/** Follows Link rel="next" from the first page; every URL keeps the list's path and filters. */
async function walk(url: string, token: string, limit: number) {
  const rows: Record<string, unknown>[] = [];
  let next: string | undefined = `${url}${url.includes("?") ? "&" : "?"}limit=${limit}`;
  let pages = 0;
  while (next) {
    const res = await ok(h.call("GET", next, { token }));
    const body = res.json();
    expect(Array.isArray(body)).toBe(true);
    expect(body.length).toBeLessThanOrEqual(limit);
    rows.push(...body);
    next = linkOf(res.headers.link);
    if (next) expect(next.startsWith(`${url.split("?")[0]}?`)).toBe(true);
    pages++;
    expect(pages).toBeLessThan(100);
  }
  return { rows, pages };
}

describe("every list paginates", () => {
  it("the OpenAPI GET routes answering an array are exactly the lists covered here, each documenting limit, cursor and Link", () => {
    const doc = h.app.swagger() as unknown as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; responses: Record<string, any> }>>;
    };
    const arrays = Object.entries(doc.paths)
      .filter(([, ops]) => ops.get?.responses?.["200"]?.content?.["application/json"]?.schema?.type === "array")
      .map(([path]) => path)
      .sort();
    expect(arrays).toEqual(Object.keys(lists).sort());
    for (const path of arrays) {
      const op = doc.paths[path]!.get!;
      expect(
        op.parameters?.filter((p) => p.in === "query").map((p) => p.name),
        path,
      ).toEqual(expect.arrayContaining(["limit", "cursor"]));
      expect(op.responses["200"].headers?.link, path).toBeDefined();
    }
  });

  it("?limit=1 answers one row and a Link to the next page; walking the Links reads every row exactly once, in order", async () => {
    for (const [path, { url, token }] of Object.entries(lists)) {
      const all = (await ok(h.call("GET", `${url}?limit=1000`, { token }))).json() as Record<string, unknown>[];
      expect(all.length, path).toBeGreaterThanOrEqual(2);
      const first = await ok(h.call("GET", `${url}?limit=1`, { token }));
      expect(first.json(), path).toHaveLength(1);
      expect(linkOf(first.headers.link), path).toBeDefined();
      const { rows, pages } = await walk(url, token, 1);
      expect(pages, path).toBe(all.length);
      expect(rows.map(keyOf), path).toEqual(all.map(keyOf));
      expect(new Set(rows.map(keyOf)).size, path).toBe(all.length);
      // The last page has no Link; the default page (100) holds everything here, so no Link either.
      const whole = await ok(h.call("GET", url, { token }));
      expect([whole.json().length, whole.headers.link], path).toEqual([all.length, undefined]);
    }
  });

  it("validates limit and cursor with the error shape", async () => {
    const { url, token } = lists["/v1/assignments/{assignmentId}/submissions"]!;
    for (const q of ["limit=0", "limit=1001", "limit=abc", "limit=1.5"]) {
      const r = await h.call("GET", `${url}?${q}`, { token });
      expect([q, r.statusCode, r.json().error.code]).toEqual([q, 400, "VALIDATION_ERROR"]);
    }
    for (const cursor of ["nonsense", Buffer.from('["x"]').toString("base64url"), Buffer.from('[1,"y"]').toString("base64url")]) {
      const r = await h.call("GET", `${url}?cursor=${cursor}`, { token });
      expect([r.statusCode, r.json().error.code]).toEqual([400, "BAD_CURSOR"]);
    }
    expect((await h.call("GET", `${url}?limit=1000`, { token })).statusCode).toBe(200);
  });

  it("keyset pages stay stable under inserts: rows added during a walk neither repeat nor push a row out", async () => {
    const s = w.students[2]!;
    const submit = () =>
      ok(
        h.call("POST", `/v1/assignments/${assignmentId}/problems/numeric-fixed/submissions`, {
          token: s.token,
          body: { answer: { value: 2 } },
        }),
        202,
      );
    const { url, token } = lists["/v1/assignments/{assignmentId}/submissions"]!;
    const before = ((await ok(h.call("GET", `${url}?limit=1000`, { token }))).json() as { id: string }[]).map((r) => r.id);
    const seen: string[] = [];
    let next: string | undefined = `${url}?limit=1`;
    while (next) {
      const res = await ok(h.call("GET", next, { token }));
      seen.push(...res.json().map((r: { id: string }) => r.id));
      next = linkOf(res.headers.link);
      if (seen.length === 1) await submit(); // a new row lands after the walk's position: it is read once, at the end
    }
    expect(seen.slice(0, before.length)).toEqual(before);
    expect(seen).toHaveLength(before.length + 1);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("filters travel in the Link, and a student's list pages over their own submissions only", async () => {
    const { url, token } = lists["/v1/assignments/{assignmentId}/submissions"]!;
    const studentId = w.students[0]!.id;
    const first = await ok(h.call("GET", `${url}?userId=${studentId}&problem=numeric-fixed&limit=1`, { token }));
    expect(first.json().map((r: { userId: string }) => r.userId)).toEqual([studentId]);
    expect(first.headers.link).toBeUndefined(); // one submission of theirs
    const mine = await walk(url, w.students[2]!.token, 1);
    expect(mine.rows.length).toBeGreaterThanOrEqual(1);
    expect(new Set(mine.rows.map((r) => r.userId))).toEqual(new Set([w.students[2]!.id]));
  });
});
