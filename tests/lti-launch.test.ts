/**
 * LTI 1.3 launches end to end: the platform emulator (its own keys) initiates the login, signs the id_token at its
 * /auth, and the tool, listening on a real port, fetches the emulator's JWKS over HTTP to verify it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLES, startPlatform, type LaunchMessage, type Platform } from "./lti/platform.ts";
import { authorize, counts, launch, postLaunch, startTool, type Tool } from "./lti/tool.ts";

let tool: Tool;
let platform: Platform;
let platformId: string;
let n = 0;
const fresh = (prefix: string) => `${prefix}-${++n}`;

beforeAll(async () => {
  tool = await startTool("lti_launch");
  platform = await startPlatform();
  platformId = await tool.register(platform);
});
afterAll(async () => {
  await platform?.close();
  await tool?.close();
});

const message = (o: Parameters<Platform["launchClaims"]>[0], extra: Partial<LaunchMessage> = {}): LaunchMessage => ({
  claims: platform.launchClaims(o),
  ...extra,
});

describe("login initiation", () => {
  it("redirects to the platform's auth URL with every parameter the spec asks for, and binds the state to the browser", async () => {
    const params = platform.loginParams(message({ sub: "login-check" }), tool.launchUrl);
    for (const method of ["POST", "GET"] as const) {
      const res =
        method === "POST"
          ? await fetch(tool.loginUrl, { method, body: new URLSearchParams(params), redirect: "manual" })
          : await fetch(`${tool.loginUrl}?${new URLSearchParams(params)}`, { redirect: "manual" });
      expect(res.status).toBe(302);
      const to = new URL(res.headers.get("location")!);
      expect(`${to.origin}${to.pathname}`).toBe(`${platform.url}/auth`);
      const q = Object.fromEntries(to.searchParams);
      expect(q).toMatchObject({
        scope: "openid",
        response_type: "id_token",
        response_mode: "form_post",
        prompt: "none",
        client_id: platform.clientId,
        redirect_uri: tool.launchUrl,
        login_hint: "login-check",
        lti_message_hint: params.lti_message_hint,
      });
      expect(q.state).toMatch(/^[\w-]{43}$/);
      expect(q.nonce).toMatch(/^[\w-]{43}$/);
      const stored = await tool.h.db.ltiState.findUniqueOrThrow({ where: { state: q.state! } });
      expect(stored).toMatchObject({ nonce: q.nonce, platformId, targetLinkUri: tool.launchUrl });
      expect(stored.expiresAt.getTime() - Date.now()).toBeGreaterThan(9 * 60_000);
      expect(res.headers.get("set-cookie")).toBe(
        `lti_state_${q.state}=${q.state}; Path=/lti; Max-Age=600; HttpOnly; Secure; SameSite=None`,
      );
    }
  });

  it("refuses an unknown issuer, a foreign target_link_uri and missing parameters, naming each", async () => {
    const params = platform.loginParams(message({ sub: "x" }), tool.launchUrl);
    const post = (p: Record<string, string>) =>
      fetch(tool.loginUrl, { method: "POST", body: new URLSearchParams(p), headers: { accept: "application/json" }, redirect: "manual" });
    const cases: [Record<string, string>, number, string][] = [
      [{ ...params, iss: "https://nowhere.example" }, 400, "LTI_UNKNOWN_PLATFORM"],
      [{ ...params, client_id: "someone-else" }, 400, "LTI_UNKNOWN_PLATFORM"],
      [{ ...params, target_link_uri: "https://evil.example/phish" }, 400, "LTI_BAD_TARGET_LINK_URI"],
      [{ iss: params.iss!, target_link_uri: params.target_link_uri! }, 400, "LTI_MISSING_PARAMETER"],
    ];
    for (const [p, status, code] of cases) {
      const res = await post(p);
      expect([res.status, (await res.json()).error.code]).toEqual([status, code]);
    }
  });
});

describe("launch", () => {
  it("creates the user, the course and the enrolment, and answers a course-scoped session token (JSON)", async () => {
    const before = await counts(tool.h);
    const res = await launch(
      tool,
      platform,
      message({ sub: "stu-1", name: "Ada Lovelace", email: "Ada@LMS.example.org", contextId: "ctx-main" }),
    );
    expect(res.status).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual(["courseId", "expiresAt", "role", "token", "userId"]);
    const [token, userId, courseId] = [String(res.json.token), String(res.json.userId), String(res.json.courseId)];
    expect(res.json.role).toBe("student");
    expect(await counts(tool.h)).toEqual({
      ...before,
      users: before.users + 1,
      courses: before.courses + 1,
      enrollments: before.enrollments + 1,
      ltiUsers: before.ltiUsers + 1,
      contexts: before.contexts + 1,
      links: before.links + 1,
      tokens: before.tokens + 1,
      nonces: before.nonces + 1,
    });
    const user = await tool.h.db.user.findUniqueOrThrow({ where: { id: userId } });
    expect([user.email, user.name, user.role]).toEqual(["ada@lms.example.org", "Ada Lovelace", "user"]);
    const course = await tool.h.db.course.findUniqueOrThrow({ where: { id: courseId } });
    expect(course.title).toBe("Course ctx-main");
    expect(course.slug).toMatch(/^ctx-main-[0-9a-f]{8}$/);
    const ctx = await tool.h.db.ltiContext.findFirstOrThrow({ where: { courseId } });
    expect(ctx).toMatchObject({
      platformId,
      contextId: "ctx-main",
      deploymentId: platform.deploymentId,
      lineItemsUrl: `${platform.url}/contexts/ctx-main/lineitems`,
      membershipsUrl: `${platform.url}/contexts/ctx-main/memberships`,
    });
    expect(ctx.scopes.sort()).toEqual(
      [
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
      ].sort(),
    );
    const enrolment = await tool.h.db.enrollment.findUniqueOrThrow({ where: { courseId_userId: { courseId, userId } } });
    expect([enrolment.role, enrolment.source]).toEqual(["student", "lti"]);
    const t = await tool.h.db.apiToken.findFirstOrThrow({ where: { userId, kind: "session" } });
    expect(t.courseId).toBe(courseId);
    expect(Math.abs(t.expiresAt!.getTime() - Date.now() - 8 * 3_600_000)).toBeLessThan(60_000);

    const me = await tool.h.call("GET", "/v1/me", { token });
    expect(me.json()).toMatchObject({ id: userId, courses: [{ id: courseId, role: "student" }] });
    expect((await tool.h.call("GET", `/v1/courses/${courseId}/assignments`, { token })).statusCode).toBe(200);
  });

  it("a relaunch reuses the user, course, enrolment and link; only a token and a nonce are added", async () => {
    const first = await launch(tool, platform, message({ sub: "stu-again", contextId: "ctx-again" }));
    const before = await counts(tool.h);
    const again = await launch(tool, platform, message({ sub: "stu-again", contextId: "ctx-again", name: "Renamed In LMS" }));
    expect(again.status).toBe(200);
    expect([again.json.userId, again.json.courseId]).toEqual([first.json.userId, first.json.courseId]);
    expect(again.json.token).not.toBe(first.json.token);
    expect(await counts(tool.h)).toEqual({ ...before, tokens: before.tokens + 1, nonces: before.nonces + 1 });
    expect((await tool.h.db.user.findUniqueOrThrow({ where: { id: String(first.json.userId) } })).name).toBe("Renamed In LMS");
  });

  it("a browser is redirected to the landing page with the token in the fragment, and the state cookie cleared", async () => {
    const { form } = await authorize(tool, platform, message({ sub: "browser-1", contextId: "ctx-browser" }));
    const res = await postLaunch(tool, form, { json: false, cookie: `lti_state_${form.state}=${form.state}` });
    expect(res.status).toBe(302);
    const to = new URL(res.location!);
    expect(`${to.origin}${to.pathname}`).toBe(`${tool.base}/docs`);
    const fragment = new URLSearchParams(to.hash.slice(1));
    expect([...fragment.keys()].sort()).toEqual(["courseId", "token"]);
    expect(res.headers.get("set-cookie")).toContain(`lti_state_${form.state}=; Path=/lti; Max-Age=0`);
    const me = await tool.h.call("GET", "/v1/me", { token: fragment.get("token")! });
    expect(me.json().courses).toEqual([expect.objectContaining({ id: fragment.get("courseId"), role: "student" })]);
  });

  it("maps LTI roles to course roles", async () => {
    const cases: [string[], string][] = [
      [[ROLES.instructor], "instructor"],
      [[ROLES.instructor, ROLES.ta], "ta"],
      [[ROLES.learner], "student"],
      [["http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"], "instructor"],
      [[ROLES.admin], "instructor"],
      [[ROLES.admin, ROLES.learner], "student"],
      [["Instructor"], "instructor"],
    ];
    for (const [roles, expected] of cases) {
      const res = await launch(tool, platform, message({ sub: fresh("role"), roles, contextId: "ctx-roles" }));
      expect([roles, res.status, res.json.role]).toEqual([roles, 200, expected]);
      const e = await tool.h.db.enrollment.findUniqueOrThrow({
        where: { courseId_userId: { courseId: String(res.json.courseId), userId: String(res.json.userId) } },
      });
      expect(e.role).toBe(expected);
    }
  });

  it("follows the platform's role changes but keeps a role set by hand through the API", async () => {
    const sub = fresh("promoted");
    const first = await launch(tool, platform, message({ sub, roles: [ROLES.learner], contextId: "ctx-follow" }));
    const ids = { courseId: String(first.json.courseId), userId: String(first.json.userId) };
    expect((await launch(tool, platform, message({ sub, roles: [ROLES.instructor], contextId: "ctx-follow" }))).json.role).toBe(
      "instructor",
    );
    const put = await tool.h.call("PUT", `/v1/courses/${ids.courseId}/enrollments/${ids.userId}`, {
      token: tool.world.adminToken,
      body: { role: "ta" },
    });
    expect(put.statusCode).toBe(200);
    const later = await launch(tool, platform, message({ sub, roles: [ROLES.learner], contextId: "ctx-follow" }));
    expect(later.json.role).toBe("ta");
    expect(await tool.h.db.enrollment.findUniqueOrThrow({ where: { courseId_userId: ids } })).toMatchObject({ role: "ta", source: "api" });
  });

  it("a launch without an email gets a placeholder address that can never receive mail", async () => {
    const claims = platform.launchClaims({ sub: "no-mail-1", contextId: "ctx-mail" });
    delete claims.email;
    const res = await launch(tool, platform, { claims });
    const user = await tool.h.db.user.findUniqueOrThrow({ where: { id: String(res.json.userId) } });
    expect(user.email).toMatch(/^lti-[0-9a-f]{20}@127\.0\.0\.1\.invalid$/);
  });

  it("links to an existing user with the asserted email, but never to an admin", async () => {
    const prof = await tool.h.call("POST", "/v1/users", {
      token: tool.world.adminToken,
      body: { email: "known@example.org", name: "Known" },
    });
    const linked = await launch(tool, platform, message({ sub: fresh("known"), email: "known@example.org", contextId: "ctx-link" }));
    expect(linked.json.userId).toBe(prof.json().id);
    const adminEmail = "admin-lti-launch-home@example.org";
    const spoof = await launch(tool, platform, message({ sub: fresh("spoof"), email: adminEmail, contextId: "ctx-link" }));
    expect(spoof.status).toBe(200);
    const user = await tool.h.db.user.findUniqueOrThrow({ where: { id: String(spoof.json.userId) } });
    expect([user.role, user.email.endsWith(".invalid")]).toEqual(["user", true]);
  });

  it("concurrent first launches into a new context make one course, and the same form posted twice at once launches once", async () => {
    const forms = await Promise.all(
      [1, 2, 3, 4].map((i) => authorize(tool, platform, message({ sub: `burst-${i}`, contextId: "ctx-burst" }))),
    );
    const answers = await Promise.all(forms.map(({ form }) => postLaunch(tool, form)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.json.courseId)).size).toBe(1);
    expect(await tool.h.db.ltiContext.count({ where: { contextId: "ctx-burst" } })).toBe(1);
    expect(await tool.h.db.enrollment.count({ where: { courseId: String(answers[0]!.json.courseId) } })).toBe(4);

    const { form } = await authorize(tool, platform, message({ sub: "double-post", contextId: "ctx-burst" }));
    const twice = await Promise.all([postLaunch(tool, form), postLaunch(tool, form)]);
    expect(twice.map((r) => r.status).sort()).toEqual([200, 401]);
    expect(await tool.h.db.apiToken.count({ where: { user: { ltiUsers: { some: { sub: "double-post" } } } } })).toBe(1);
  });

  it("picks up a key rotation on the platform (an unknown kid refetches its JWKS)", async () => {
    expect((await launch(tool, platform, message({ sub: fresh("rot"), contextId: "ctx-rot" }))).status).toBe(200);
    await platform.rotateKey({ dropOld: true });
    const res = await launch(tool, platform, message({ sub: fresh("rot"), contextId: "ctx-rot" }));
    expect([res.status, res.json.role]).toEqual([200, "student"]);
  });
});
