/**
 * Course-scoped tokens: LTI session tokens (expiry, one course, no token minting, never admin) and integration
 * tokens with the grades:read scope (read-only, one course).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTokenSecret, sha256 } from "../src/lib/crypto.ts";
import { assign, enroll, mkCourse } from "./helpers/people.ts";
import { ROLES, startPlatform, type Platform } from "./lti/platform.ts";
import { launch, startTool, type Tool } from "./lti/tool.ts";

let tool: Tool;
let platform: Platform;
let session: { token: string; userId: string; courseId: string };
let courseB: string;
let assignmentB: string;

beforeAll(async () => {
  tool = await startTool("lti_tokens", { LTI_SESSION_HOURS: "2" });
  await tool.h.loadSet("tests/fixtures/sets/grader-zoo");
  platform = await startPlatform();
  await tool.register(platform);
  const res = await launch(tool, platform, {
    claims: platform.launchClaims({ sub: "prof-tokens", email: "prof-tokens@example.org", roles: [ROLES.instructor], contextId: "ctx-a" }),
  });
  session = { token: String(res.json.token), userId: String(res.json.userId), courseId: String(res.json.courseId) };
  // The same person also teaches course B, set up through the API with a personal token.
  courseB = await mkCourse(tool.h, tool.world.adminToken, "course-b-tokens");
  const personal = await tool.h.call("POST", `/v1/users/${session.userId}/tokens`, { token: tool.world.adminToken, body: { name: "own" } });
  await enroll(tool.h, tool.world.adminToken, courseB, { id: session.userId, token: personal.json().token }, "instructor");
  assignmentB = await assign(tool.h, personal.json().token, courseB, { problemSet: "grader-zoo" });
});
afterAll(async () => {
  await platform?.close();
  await tool?.close();
});

const call = (method: string, url: string, token: string, body?: unknown) => tool.h.call(method, url, { token, body });
const status = async (method: string, url: string, token: string, body?: unknown) => {
  const res = await call(method, url, token, body);
  return [res.statusCode, res.statusCode >= 400 ? res.json().error.code : "ok"];
};

describe("LTI session tokens", () => {
  it("live LTI_SESSION_HOURS and are refused once expired", async () => {
    const row = await tool.h.db.apiToken.findUniqueOrThrow({ where: { tokenHash: sha256(session.token) } });
    expect(row).toMatchObject({ kind: "session", courseId: session.courseId, scope: null });
    expect(Math.abs(row.expiresAt!.getTime() - Date.now() - 2 * 3_600_000)).toBeLessThan(60_000);
    const other = await launch(tool, platform, { claims: platform.launchClaims({ sub: "stu-expiring", contextId: "ctx-a" }) });
    const token = String(other.json.token);
    expect(await status("GET", "/v1/me", token)).toEqual([200, "ok"]);
    await tool.h.db.apiToken.update({ where: { tokenHash: sha256(token) }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await status("GET", "/v1/me", token)).toEqual([401, "TOKEN_EXPIRED"]);
  });

  it("act only in the launched course: another course of the same user is 404", async () => {
    expect(await status("GET", `/v1/courses/${session.courseId}/assignments`, session.token)).toEqual([200, "ok"]);
    expect(await status("GET", `/v1/courses/${courseB}/assignments`, session.token)).toEqual([404, "NOT_FOUND"]);
    expect(await status("POST", `/v1/courses/${courseB}/assignments`, session.token, { problemSet: "grader-zoo" })).toEqual([
      404,
      "NOT_FOUND",
    ]);
    expect(await status("GET", `/v1/assignments/${assignmentB}/submissions`, session.token)).toEqual([404, "NOT_FOUND"]);
    const me = (await call("GET", "/v1/me", session.token)).json();
    expect(me.courses.map((c: { id: string }) => c.id)).toEqual([session.courseId]);
    // The same user's personal token sees both.
    const own = await tool.h.db.apiToken.findFirstOrThrow({ where: { userId: session.userId, kind: "personal" } });
    expect(own.courseId).toBeNull();
  });

  it("cannot mint or revoke tokens, and never carry admin powers", async () => {
    expect(await status("POST", `/v1/users/${session.userId}/tokens`, session.token, { name: "escape" })).toEqual([403, "TOKEN_SCOPE"]);
    expect(await status("GET", `/v1/users/${session.userId}/tokens`, session.token)).toEqual([403, "TOKEN_SCOPE"]);
    // An admin's session (should an admin ever launch) is a plain user in its course.
    const adminUser = await tool.h.db.user.findFirstOrThrow({ where: { role: "admin" } });
    const secret = newTokenSecret();
    await tool.h.db.apiToken.create({
      data: {
        userId: adminUser.id,
        name: "s",
        kind: "session",
        tokenHash: sha256(secret),
        courseId: session.courseId,
        expiresAt: new Date(Date.now() + 60_000),
      },
    });
    expect(await status("POST", "/v1/courses", secret, { slug: "sneaky", title: "x" })).toEqual([403, "FORBIDDEN"]);
    expect(await status("GET", "/v1/lti/platforms", secret)).toEqual([403, "FORBIDDEN"]);
  });
});

describe("integration tokens (grades:read)", () => {
  it("an instructor makes one; it reads this course's grades and assignments, writes nothing, sees no other course", async () => {
    const made = await call("POST", `/v1/courses/${session.courseId}/tokens`, session.token, {
      name: "Canvas pull",
      scope: "grades:read",
      expiresInDays: 30,
    });
    expect(made.statusCode).toBe(201);
    const body = made.json();
    expect(body).toMatchObject({ name: "Canvas pull", scope: "grades:read", courseId: session.courseId });
    expect(Math.abs(Date.parse(body.expiresAt) - Date.now() - 30 * 86_400_000)).toBeLessThan(60_000);
    const t = body.token as string;
    const row = await tool.h.db.apiToken.findUniqueOrThrow({ where: { id: body.id } });
    expect([row.kind, row.userId, row.tokenHash]).toEqual(["integration", session.userId, sha256(t)]);

    const a = session.courseId;
    const assignmentA = await assign(tool.h, session.token, a, { problemSet: "grader-zoo" });
    expect(await status("GET", `/v1/courses/${a}/assignments`, t)).toEqual([200, "ok"]);
    expect(await status("GET", `/v1/courses/${a}/grades`, t)).toEqual([200, "ok"]);
    expect(await status("GET", `/v1/assignments/${assignmentA}/grades`, t)).toEqual([200, "ok"]);
    expect(await status("GET", `/v1/assignments/${assignmentA}`, t)).toEqual([200, "ok"]);
    expect(await status("GET", `/v1/courses/${a}/statistics`, t)).toEqual([200, "ok"]);
    expect(await status("GET", "/v1/me", t)).toEqual([200, "ok"]);
    expect(await status("POST", `/v1/courses/${a}/assignments`, t, { problemSet: "grader-zoo" })).toEqual([403, "TOKEN_SCOPE"]);
    expect(
      await status("POST", `/v1/assignments/${assignmentA}/problems/single-choice/submissions`, t, { answer: { selected: ["a"] } }),
    ).toEqual([403, "TOKEN_SCOPE"]);
    expect(await status("PUT", `/v1/courses/${a}/enrollments/${session.userId}`, t, { role: "student" })).toEqual([403, "TOKEN_SCOPE"]);
    expect(await status("POST", `/v1/courses/${a}/tokens`, t, { name: "more", scope: "grades:read" })).toEqual([403, "TOKEN_SCOPE"]);
    expect(await status("GET", `/v1/assignments/${assignmentA}/submissions`, t)).toEqual([403, "TOKEN_SCOPE"]);
    expect(await status("GET", "/v1/problem-sets", t)).toEqual([403, "TOKEN_SCOPE"]);
    expect(await status("GET", `/v1/courses/${courseB}/grades`, t)).toEqual([404, "NOT_FOUND"]);
    expect(await status("GET", `/v1/assignments/${assignmentB}/grades`, t)).toEqual([404, "NOT_FOUND"]);

    const list = await call("GET", `/v1/courses/${a}/tokens`, session.token);
    expect(list.json()).toEqual([expect.objectContaining({ id: body.id, scope: "grades:read", userId: session.userId, revokedAt: null })]);
    expect(JSON.stringify(list.json())).not.toContain(t);
    expect(await status("DELETE", `/v1/courses/${a}/tokens/${body.id}`, session.token)).toEqual([204, "ok"]);
    expect(await status("GET", `/v1/courses/${a}/grades`, t)).toEqual([401, "TOKEN_REVOKED"]);
  });

  it("students cannot make one; a lifetime past TOKEN_MAX_DAYS is refused; an unknown scope is a 400", async () => {
    const stu = await launch(tool, platform, { claims: platform.launchClaims({ sub: "stu-tokens", contextId: "ctx-a" }) });
    expect(
      await status("POST", `/v1/courses/${session.courseId}/tokens`, String(stu.json.token), { name: "x", scope: "grades:read" }),
    ).toEqual([403, "FORBIDDEN"]);
    const long = { name: "x", scope: "grades:read", expiresInDays: 100_000 };
    expect(await status("POST", `/v1/courses/${session.courseId}/tokens`, session.token, long)).toEqual([422, "TOKEN_LIFETIME_TOO_LONG"]);
    expect(await status("POST", `/v1/courses/${session.courseId}/tokens`, session.token, { name: "x", scope: "grades:write" })).toEqual([
      400,
      "VALIDATION_ERROR",
    ]);
    expect(await tool.h.db.apiToken.count({ where: { kind: "integration" } })).toBe(1);
  });
});
