/**
 * NRPS roster sync end to end: the emulator's memberships, paged with Link rel="next", become enrolments (source
 * "roster") before anyone submits; API-set roles are kept; a changed roster is followed; the enrollments list and
 * its cursor pagination; a sync whose job Redis lost is recovered by the outbox.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recoverOnce } from "../src/jobs/outbox.ts";
import { ltiCourse, until, type LtiCourse } from "./lti/course-setup.ts";
import { ROLES, startPlatform, type Member, type Platform } from "./lti/platform.ts";
import { startTool, type Tool } from "./lti/tool.ts";

let tool: Tool;
let platform: Platform;
let course: LtiCourse;
let contextRowId: string;

const TA_ROLE = ROLES.ta;
const learner = (id: string, name: string, extra: Partial<Member> = {}): Member => ({
  user_id: id,
  roles: [ROLES.learner],
  name,
  email: `${id}@lms.example.org`,
  status: "Active",
  ...extra,
});
const roster: Member[] = [
  { user_id: "prof-ctx-r", roles: [ROLES.instructor], name: "User prof-ctx-r", email: "prof-ctx-r@lms.example.org", status: "Active" },
  learner("s1", "Bea Student"),
  learner("s2", "Cid Student"),
  learner("s3", "Dee Student"),
  { user_id: "ta1", roles: [TA_ROLE, ROLES.instructor], name: "Eve Assistant", email: "EVE@lms.example.org", status: "Active" },
  learner("gone", "Gus Gone", { status: "Inactive" }),
  { user_id: "mentor", roles: ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"], name: "Mo Mentor", status: "Active" },
  learner("api-ta", "Api Ta"),
];

beforeAll(async () => {
  tool = await startTool("lti_roster");
  platform = await startPlatform();
  await tool.register(platform);
  platform.setMembers("ctx-r", roster, 2);
  course = await ltiCourse(tool, platform, "ctx-r", "Roster HW");
  contextRowId = (await tool.h.db.ltiContext.findFirstOrThrow({ where: { courseId: course.courseId } })).id;
});
afterAll(async () => {
  await tool?.close();
  await platform?.close();
});

const enrollments = async (query = "") => {
  const res = await tool.h.call("GET", `/v1/courses/${course.courseId}/enrollments${query}`, { token: course.instructorToken });
  expect(res.statusCode).toBe(200);
  return res;
};
const summary = async () =>
  ((await enrollments()).json() as { name: string; email: string; role: string; source: string }[]).map((e) => [
    e.name,
    e.email,
    e.role,
    e.source,
  ]);
const lastSync = async () => (await tool.h.db.ltiContext.findUniqueOrThrow({ where: { id: contextRowId } })).lastRosterSync;

describe("roster sync (NRPS)", () => {
  it("enrols the LMS's active members with mapped roles, all pages, before anyone submits; API-set roles stay", async () => {
    // A TA enrolled by hand through the API, whom the LMS lists as a learner: the API's decision stands.
    const admin = tool.world.adminToken;
    const u = await tool.h.call("POST", "/v1/users", { token: admin, body: { email: "api-ta@lms.example.org", name: "Api Ta" } });
    const put = await tool.h.call("PUT", `/v1/courses/${course.courseId}/enrollments/${u.json().id}`, {
      token: admin,
      body: { role: "ta" },
    });
    expect(put.statusCode).toBe(200);

    const requested = await tool.h.call("POST", `/v1/courses/${course.courseId}/roster/sync`, { token: course.instructorToken });
    expect([requested.statusCode, requested.json()]).toEqual([202, { contexts: 1 }]);
    const pagesBefore = platform.state.membershipRequests.length;
    tool.h.startWorker();
    await until("roster synced", lastSync);

    expect(await summary()).toEqual([
      ["Api Ta", "api-ta@lms.example.org", "ta", "api"],
      ["Bea Student", "s1@lms.example.org", "student", "roster"],
      ["Cid Student", "s2@lms.example.org", "student", "roster"],
      ["Dee Student", "s3@lms.example.org", "student", "roster"],
      ["Eve Assistant", "eve@lms.example.org", "ta", "roster"],
      ["User prof-ctx-r", "prof-ctx-r@lms.example.org", "instructor", "lti"],
    ]);
    // 8 members in pages of 2: four requests, following Link rel="next".
    expect(platform.state.membershipRequests.slice(pagesBefore)).toEqual([
      "/contexts/ctx-r/memberships",
      "/contexts/ctx-r/memberships?page=2&limit=2",
      "/contexts/ctx-r/memberships?page=3&limit=2",
      "/contexts/ctx-r/memberships?page=4&limit=2",
    ]);
    // Each member is linked by their LTI sub, so their later launches and scores find the same user.
    expect((await tool.h.db.ltiUser.findMany({ where: { sub: { in: ["s1", "s2", "s3", "ta1", "api-ta"] } } })).length).toBe(5);
    expect(await tool.h.db.ltiUser.count({ where: { sub: { in: ["gone", "mentor"] } } })).toBe(0);

    // The gradebook lists the roster's students with no submissions yet.
    const grades = await tool.h.call("GET", `/v1/assignments/${course.assignmentId}/grades`, { token: course.instructorToken });
    expect(grades.statusCode).toBe(200);
    expect(JSON.stringify(grades.json())).toContain("Bea Student");
  });

  it("follows a changed roster on POST /roster/sync: new members, changed roles; nobody is unenrolled", async () => {
    const first = (await lastSync())!;
    platform.setMembers("ctx-r", [
      ...roster.map((m) =>
        m.user_id === "s3" ? { ...m, roles: [TA_ROLE] } : m.user_id === "s1" ? { ...m, status: "Inactive" as const } : m,
      ),
      learner("s5", "Fay Student"),
    ]);
    const res = await tool.h.call("POST", `/v1/courses/${course.courseId}/roster/sync`, { token: course.instructorToken });
    expect([res.statusCode, res.json()]).toEqual([202, { contexts: 1 }]);
    await until("second sync", async () => ((await lastSync())?.getTime() ?? 0) > first.getTime());
    expect(await summary()).toEqual([
      ["Api Ta", "api-ta@lms.example.org", "ta", "api"],
      ["Bea Student", "s1@lms.example.org", "student", "roster"],
      ["Cid Student", "s2@lms.example.org", "student", "roster"],
      ["Dee Student", "s3@lms.example.org", "ta", "roster"],
      ["Eve Assistant", "eve@lms.example.org", "ta", "roster"],
      ["Fay Student", "s5@lms.example.org", "student", "roster"],
      ["User prof-ctx-r", "prof-ctx-r@lms.example.org", "instructor", "lti"],
    ]);
    const audit = await tool.h.db.auditEvent.findMany({
      where: { action: "lti.roster.sync", entityId: course.courseId },
      orderBy: { createdAt: "asc" },
    });
    expect(audit.at(-1)!.data).toMatchObject({ contextRowId, pages: 5, members: 9, enrolled: 1, changed: 1, skipped: 3, truncated: false });
  });

  it("paginates the enrollments list with a cursor in Link rel=next", async () => {
    const all = (await enrollments()).json();
    const seen: unknown[] = [];
    let url: string | null = `?limit=3`;
    let pages = 0;
    while (url) {
      const res = await enrollments(url.slice(url.indexOf("?")));
      seen.push(...res.json());
      pages++;
      const link = res.headers.link as string | undefined;
      url = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null;
      if (url) expect(url.startsWith(`/v1/courses/${course.courseId}/enrollments?limit=3&cursor=`)).toBe(true);
    }
    expect([pages, seen]).toEqual([3, all]);
    const bad = await tool.h.call("GET", `/v1/courses/${course.courseId}/enrollments?cursor=nonsense`, { token: course.instructorToken });
    expect([bad.statusCode, bad.json().error.code]).toEqual([400, "BAD_CURSOR"]);
  });

  it("a requested sync whose job Redis lost is run by the outbox", async () => {
    const before = (await lastSync())!;
    platform.setMembers("ctx-r", [...roster, learner("s6", "Gil Student")]);
    // Requested (lastRosterSync NULL) with no job, as after a Redis flush.
    await tool.h.db.ltiContext.update({ where: { id: contextRowId }, data: { lastRosterSync: null } });
    expect(await recoverOnce(tool.h.db, tool.h.queue, { graceMs: 0 })).toBeGreaterThanOrEqual(1);
    await until("recovered sync", async () => ((await lastSync())?.getTime() ?? 0) > before.getTime());
    expect((await summary()).map((r) => r[0])).toContain("Gil Student");
  });
});
