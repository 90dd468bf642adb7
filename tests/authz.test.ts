import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

let h: Harness;
let a: World; // course A
let b: { courseId: string; instructor: { id: string; token: string }; students: { id: string; token: string }[] };
let assignmentA: string;
let assignmentB: string;
let subA0: string;

async function mkUser(email: string) {
  const u = (await h.call("POST", "/v1/users", { token: a.adminToken, body: { email, name: email } })).json();
  const t = (await h.call("POST", `/v1/users/${u.id}/tokens`, { token: a.adminToken, body: { name: "t" } })).json();
  return { id: u.id as string, token: t.token as string };
}

beforeAll(async () => {
  h = await createHarness("authz");
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  h.startWorker();
  a = await createWorld(h, { students: 2, course: "course-a" });
  assignmentA = await createAssignment(h, a, { problemSet: "grader-zoo" });

  const course = (await h.call("POST", "/v1/courses", { token: a.adminToken, body: { slug: "course-b", title: "B" } })).json();
  const instructor = await mkUser("prof-b@example.org");
  const student = await mkUser("student-b@example.org");
  await h.call("PUT", `/v1/courses/${course.id}/enrollments/${instructor.id}`, { token: a.adminToken, body: { role: "instructor" } });
  await h.call("PUT", `/v1/courses/${course.id}/enrollments/${student.id}`, { token: instructor.token, body: { role: "student" } });
  b = { courseId: course.id, instructor, students: [student] };
  assignmentB = (
    await h.call("POST", `/v1/courses/${course.id}/assignments`, { token: instructor.token, body: { problemSet: "grader-zoo" } })
  ).json().id;

  const res = await h.call("POST", `/v1/assignments/${assignmentA}/problems/single-choice/submissions`, {
    token: a.students[0]!.token,
    body: { answer: { selected: ["red"] } },
  });
  subA0 = res.json().id;
  await waitForGrade(h, subA0, a.students[0]!.token);
});
afterAll(() => h?.close());

describe("students", () => {
  it("see their own submission but not a classmate's (404, not 403)", async () => {
    expect((await h.call("GET", `/v1/submissions/${subA0}`, { token: a.students[0]!.token })).statusCode).toBe(200);
    const other = await h.call("GET", `/v1/submissions/${subA0}`, { token: a.students[1]!.token });
    expect(other.statusCode).toBe(404);
    expect(other.json().error.code).toBe("NOT_FOUND");
  });

  it("listing an assignment shows only their own, whatever userId they ask for", async () => {
    const res = await h.call("GET", `/v1/assignments/${assignmentA}/submissions?userId=${a.students[0]!.id}`, {
      token: a.students[1]!.token,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([]);
  });

  it("cannot submit to, list or even see another course's assignment", async () => {
    const s = a.students[0]!.token;
    expect(
      (
        await h.call("POST", `/v1/assignments/${assignmentB}/problems/single-choice/submissions`, {
          token: s,
          body: { answer: { selected: ["red"] } },
        })
      ).statusCode,
    ).toBe(404);
    expect((await h.call("GET", `/v1/assignments/${assignmentB}/submissions`, { token: s })).statusCode).toBe(404);
    expect((await h.call("GET", `/v1/courses/${b.courseId}/assignments`, { token: s })).statusCode).toBe(404);
  });

  it("cannot do staff work in their own course (403: they know it exists)", async () => {
    const s = a.students[0]!;
    expect(
      (await h.call("POST", `/v1/courses/${a.courseId}/assignments`, { token: s.token, body: { problemSet: "grader-zoo" } })).statusCode,
    ).toBe(403);
    expect(
      (await h.call("PUT", `/v1/courses/${a.courseId}/enrollments/${s.id}`, { token: s.token, body: { role: "instructor" } })).statusCode,
    ).toBe(403);
    expect((await h.call("POST", `/v1/submissions/${subA0}/regrade`, { token: s.token })).statusCode).toBe(403);
    expect((await h.call("POST", "/v1/users", { token: s.token, body: { email: "x@example.org", name: "x" } })).statusCode).toBe(403);
    expect((await h.call("POST", "/v1/courses", { token: s.token, body: { slug: "mine", title: "mine" } })).statusCode).toBe(403);
  });

  it("never see correct answers, reference expressions or private config in problem sets", async () => {
    const res = await h.call("GET", "/v1/problem-sets/grader-zoo", { token: a.students[0]!.token });
    expect(res.statusCode).toBe(200);
    const text = res.body;
    for (const secret of ['"correct"', "1 / (H * W)", "transpose(X)", "mode collapse", "3.14159", '"rubric"', '"accept"'])
      expect(text).not.toContain(secret);
    const single = res.json().problems.find((p: { slug: string }) => p.slug === "single-choice");
    expect(single.answerFormat).toEqual({ options: expect.any(Array), multiple: false });
  });
});

describe("staff", () => {
  it("see every submission of their course and nothing of another course", async () => {
    expect((await h.call("GET", `/v1/submissions/${subA0}`, { token: a.instructor.token })).statusCode).toBe(200);
    expect((await h.call("GET", `/v1/submissions/${subA0}`, { token: b.instructor.token })).statusCode).toBe(404);
    expect((await h.call("GET", `/v1/assignments/${assignmentA}/submissions`, { token: b.instructor.token })).statusCode).toBe(404);
    expect((await h.call("POST", `/v1/submissions/${subA0}/regrade`, { token: b.instructor.token })).statusCode).toBe(404);
    expect(
      (
        await h.call("PUT", `/v1/courses/${a.courseId}/enrollments/${b.students[0]!.id}`, {
          token: b.instructor.token,
          body: { role: "student" },
        })
      ).statusCode,
    ).toBe(404);
  });

  it("a TA sees submissions but cannot create assignments or enroll people", async () => {
    const ta = await mkUser("ta-a@example.org");
    await h.call("PUT", `/v1/courses/${a.courseId}/enrollments/${ta.id}`, { token: a.instructor.token, body: { role: "ta" } });
    expect((await h.call("GET", `/v1/submissions/${subA0}`, { token: ta.token })).statusCode).toBe(200);
    expect(
      (await h.call("POST", `/v1/courses/${a.courseId}/assignments`, { token: ta.token, body: { problemSet: "grader-zoo" } })).statusCode,
    ).toBe(403);
  });

  it("only admins and instructors may upload problem sets", async () => {
    const student = await h.call("POST", "/v1/problem-sets", { token: a.students[0]!.token });
    expect(student.statusCode).toBe(403);
  });
});
