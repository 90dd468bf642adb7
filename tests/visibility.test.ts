import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { courseRole } from "../src/services/access.ts";
import { createDb } from "../src/db.ts";
import { NotFoundError } from "../src/errors.ts";
import { isDatabaseUnavailable } from "../src/lib/prisma-errors.ts";
import { createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";
import { assign, enroll, mkCourse, mkUser, type Person } from "./helpers/people.ts";
import { choiceBundle, renamedBundle, uploadBundle } from "./helpers/set-bundles.ts";

const ZOO = "tests/fixtures/sets/grader-zoo";
const DAY = 86_400_000;

let h: Harness;
let a: World;
let ta: Person;
let profB: Person;
let studentB: Person;
let loner: Person;
let examAssignment: string;

const read = (slug: string, who: { token: string }) => h.call("GET", `/v1/problem-sets/${slug}`, { token: who.token });
const listed = async (who: { token: string }) =>
  (await h.call("GET", "/v1/problem-sets", { token: who.token })).json().map((s: { slug: string }) => s.slug);

beforeAll(async () => {
  h = await createHarness("visibility");
  await h.loadSet(ZOO); // the deployment's catalog
  a = await createWorld(h, { students: 2, course: "ours" });
  ta = await enroll(h, a.adminToken, a.courseId, await mkUser(h, a.adminToken, "ta@example.org"), "ta");
  const courseB = await mkCourse(h, a.adminToken, "theirs");
  profB = await enroll(h, a.adminToken, courseB, await mkUser(h, a.adminToken, "prof-b@example.org"), "instructor");
  studentB = await enroll(h, a.adminToken, courseB, await mkUser(h, a.adminToken, "student-b@example.org"), "student");
  loner = await mkUser(h, a.adminToken, "loner@example.org");

  for (const slug of ["a-open", "a-draft"])
    expect((await uploadBundle(h, a.instructor.token, await choiceBundle(slug, { correct: ["red"] }))).statusCode).toBe(201);
  expect((await uploadBundle(h, a.instructor.token, await renamedBundle(ZOO, "a-exam"))).statusCode).toBe(201);
  expect((await uploadBundle(h, profB.token, await choiceBundle("b-private", { correct: ["dog"] }))).statusCode).toBe(201);
  await assign(h, a.instructor.token, a.courseId, { problemSet: "a-open" });
  examAssignment = await assign(h, a.instructor.token, a.courseId, {
    problemSet: "a-exam",
    opensAt: new Date(Date.now() + DAY).toISOString(),
  });
  await assign(h, profB.token, courseB, { problemSet: "b-private" });
});
afterAll(() => h?.close());

describe("GET /v1/problem-sets lists exactly what the caller may read", () => {
  it.each([
    ["admin: every set", () => ({ token: a.adminToken }), ["a-draft", "a-exam", "a-open", "b-private", "grader-zoo"]],
    ["instructor: catalog, own and assigned", () => a.instructor, ["a-draft", "a-exam", "a-open", "grader-zoo"]],
    ["TA: catalog and assigned in their course, opened or not", () => ta, ["a-exam", "a-open", "grader-zoo"]],
    ["student: opened assignments of their course", () => a.students[0]!, ["a-open"]],
    ["another course's instructor", () => profB, ["b-private", "grader-zoo"]],
    ["another course's student", () => studentB, ["b-private"]],
    ["a user in no course", () => loner, []],
  ])("%s", async (_, who, slugs) => {
    expect(await listed(who())).toEqual(slugs);
    for (const slug of ["a-draft", "a-exam", "a-open", "b-private", "grader-zoo"])
      expect((await read(slug, who())).statusCode, slug).toBe(slugs.includes(slug) ? 200 : 404);
  });
});

describe("reading a set", () => {
  it("another course's student gets the same 404 as for a set that does not exist", async () => {
    const hidden = await read("a-open", studentB);
    const missing = await read("no-such-set", studentB);
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json().error.code).toBe(missing.json().error.code);
    expect(hidden.json().error.message.replace("a-open", "X")).toBe(missing.json().error.message.replace("no-such-set", "X"));
  });

  it("a student reads an exam only once it opens, then with their own numbers", async () => {
    const [s0, s1] = a.students as [Person, Person];
    expect((await read("a-exam", s0)).statusCode).toBe(404);
    expect(await listed(s0)).not.toContain("a-exam");
    // Time passes: the exam opened a second ago.
    await h.db.assignment.update({ where: { id: examAssignment }, data: { opensAt: new Date(Date.now() - 1000) } });
    const [v0, v1] = await Promise.all([read("a-exam", s0), read("a-exam", s1)]);
    expect(v0.statusCode).toBe(200);
    expect(await listed(s0)).toContain("a-exam");
    const numeric = (res: typeof v0) =>
      res.json().problems.find((p: { slug: string }) => p.slug === "numeric-random") as { statement: string; answerFormat: object };
    expect(numeric(v0).statement).not.toMatch(/\{\{\w+\}\}/);
    expect(numeric(v0).answerFormat).not.toEqual(numeric(v1).answerFormat);
    expect(numeric((await read("a-exam", s0))!).answerFormat).toEqual(numeric(v0).answerFormat);
  });
});

describe("assigning a set", () => {
  it("an instructor cannot assign a set they may not read: the same answer as an unknown slug", async () => {
    const url = `/v1/courses/${a.courseId}/assignments`;
    const unknown = await h.call("POST", url, { token: a.instructor.token, body: { problemSet: "no-such-set" } });
    const hidden = await h.call("POST", url, { token: a.instructor.token, body: { problemSet: "b-private" } });
    expect(hidden.statusCode).toBe(unknown.statusCode);
    expect(hidden.json().error.code).toBe(unknown.json().error.code);
    expect(await h.db.assignment.count({ where: { problemSet: { slug: "b-private" }, courseId: a.courseId } })).toBe(0);
    // Once B makes A's instructor a co-owner, A may read and assign it.
    await h.call("PUT", `/v1/problem-sets/b-private/owners/${a.instructor.id}`, { token: profB.token });
    expect((await h.call("POST", url, { token: a.instructor.token, body: { problemSet: "b-private" } })).statusCode).toBe(201);
  });
});

describe("infrastructure errors are not 404s", () => {
  it("courseRole lets a database failure through (the error handler's 503) instead of answering 'not found'", async () => {
    const down = createDb("postgresql://postgres@127.0.0.1:1/nowhere");
    try {
      const err = await courseRole(down, { userId: a.instructor.id, role: "user", tokenId: null }, a.courseId).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(NotFoundError);
      expect(isDatabaseUnavailable(err)).toBe(true);
      expect(await courseRole(h.db, { userId: loner.id, role: "user", tokenId: null }, a.courseId).catch((e: unknown) => e)).toBeInstanceOf(
        NotFoundError,
      );
    } finally {
      await down.$disconnect();
    }
  });
});
