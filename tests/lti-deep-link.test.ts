/**
 * Deep Linking 2.0 round trip: the platform's LtiDeepLinkingRequest launch, the instructor's choice at
 * POST /lti/deep-link, the signed LtiDeepLinkingResponse verified with the tool's JWKS fetched over HTTP (here and by
 * the emulator's return endpoint), and the link's later launches opening the assignment.
 */
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DL_CLAIM, LTI, ROLES, startPlatform, type Platform } from "./lti/platform.ts";
import { launch, startTool, type Tool } from "./lti/tool.ts";

let tool: Tool;
let platform: Platform;

beforeAll(async () => {
  tool = await startTool("lti_deep_link");
  await tool.h.loadSet("tests/fixtures/sets/grader-zoo");
  platform = await startPlatform();
  await tool.register(platform);
});
afterAll(async () => {
  await platform?.close();
  await tool?.close();
});

const dlLaunch = async (sub = "prof-dl", roles = [ROLES.instructor], opts: { json?: boolean } = {}) =>
  launch(tool, platform, { claims: platform.launchClaims({ sub, roles, contextId: "ctx-dl", deepLinking: { data: "opaque-42" } }) }, opts);

const deepLink = (token: string, body: unknown, json = true) =>
  fetch(`${tool.base}/lti/deep-link`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: json ? "application/json" : "text/html,*/*;q=0.8",
    },
    body: JSON.stringify(body),
  });

describe("deep linking", () => {
  it("a deep-linking launch answers a token flagged deepLinking (JSON) or lands with deepLinking=1 (browser)", async () => {
    const res = await dlLaunch();
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ deepLinking: true, role: "instructor" });
    expect(res.json.assignmentId).toBeUndefined();
    const browser = await dlLaunch("prof-dl", [ROLES.instructor], { json: false });
    expect(browser.status).toBe(302);
    expect(new URLSearchParams(new URL(browser.location!).hash.slice(1)).get("deepLinking")).toBe("1");
  });

  it("returns one ltiResourceLink signed with a key of the tool's JWKS, with the data echoed; its launches open the assignment", async () => {
    const dl = await dlLaunch();
    const res = await deepLink(String(dl.json.token), { problemSet: "grader-zoo" });
    expect(res.status).toBe(200);
    const out = await res.json();
    expect(out.returnUrl).toBe(`${platform.url}/deep-link-return`);

    const jwks = createRemoteJWKSet(new URL(`${tool.base}/lti/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(out.jwt, jwks, {
      issuer: platform.clientId,
      audience: platform.issuer,
      algorithms: ["RS256"],
    });
    expect(protectedHeader.alg).toBe("RS256");
    expect(payload[`${LTI}message_type`]).toBe("LtiDeepLinkingResponse");
    expect(payload[`${LTI}version`]).toBe("1.3.0");
    expect(payload[`${LTI}deployment_id`]).toBe(platform.deploymentId);
    expect(payload[`${DL_CLAIM}data`]).toBe("opaque-42");
    expect(typeof payload.nonce).toBe("string");
    expect(payload.exp! - payload.iat!).toBe(300);
    const assignment = await tool.h.db.assignment.findUniqueOrThrow({ where: { id: out.assignmentId }, include: { problemSet: true } });
    expect([assignment.courseId, assignment.problemSet.slug, assignment.title]).toEqual([
      dl.json.courseId,
      "grader-zoo",
      "One problem of every answer grader",
    ]);
    expect(payload[`${DL_CLAIM}content_items`]).toEqual([
      {
        type: "ltiResourceLink",
        title: "One problem of every answer grader",
        url: tool.launchUrl,
        custom: { assignment_id: out.assignmentId },
        lineItem: { scoreMaximum: 16, label: "One problem of every answer grader", resourceId: out.assignmentId, tag: "autograder" },
      },
    ]);

    // Once per deep-linking launch: a second post would make a second assignment.
    const again = await deepLink(String(dl.json.token), { problemSet: "grader-zoo" });
    expect([again.status, (await again.json()).error.code]).toEqual([409, "LTI_DEEP_LINK_USED"]);

    // The platform creates the link with the item's custom claim; a student's launch of it opens the assignment.
    const custom = { assignment_id: out.assignmentId };
    const student = await launch(tool, platform, {
      claims: platform.launchClaims({ sub: "stu-dl", contextId: "ctx-dl", resourceLinkId: "dl-link", custom }),
    });
    expect([student.status, student.json.assignmentId]).toEqual([200, out.assignmentId]);
    // The student's session token answers the assignment's problems (graded by L2's flow; here: accepted).
    const submitted = await tool.h.call("POST", `/v1/assignments/${out.assignmentId}/problems/single-choice/submissions`, {
      token: String(student.json.token),
      body: { answer: { selected: ["red"] } },
    });
    expect([submitted.statusCode, submitted.json().status]).toEqual([202, "queued"]);
    const link = await tool.h.db.ltiResourceLink.findFirstOrThrow({ where: { resourceLinkId: "dl-link" } });
    expect(link.assignmentId).toBe(out.assignmentId);
    // The link remembers its assignment even when a later launch carries no custom claim.
    const plain = await launch(tool, platform, {
      claims: platform.launchClaims({ sub: "stu-dl", contextId: "ctx-dl", resourceLinkId: "dl-link" }),
    });
    expect(plain.json.assignmentId).toBe(out.assignmentId);
    const browser = await launch(
      tool,
      platform,
      { claims: platform.launchClaims({ sub: "stu-dl", contextId: "ctx-dl", resourceLinkId: "dl-link" }) },
      { json: false },
    );
    expect(new URLSearchParams(new URL(browser.location!).hash.slice(1)).get("assignmentId")).toBe(out.assignmentId);
    // The same id in a link of another course opens nothing there.
    const elsewhere = await launch(tool, platform, {
      claims: platform.launchClaims({ sub: "stu-dl", contextId: "ctx-other", resourceLinkId: "copied", custom }),
    });
    expect([elsewhere.status, elsewhere.json.assignmentId]).toEqual([200, undefined]);
  });

  it("a browser gets the auto-posting form; posted to the platform, the emulator verifies the JWT with the tool's JWKS", async () => {
    const dl = await dlLaunch();
    const res = await deepLink(String(dl.json.token), { problemSet: "grader-zoo", problem: "multi-choice" }, false);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toContain(`form-action ${platform.url}`);
    const html = await res.text();
    expect(html).toContain(`action="${platform.url}/deep-link-return"`);
    const jwt = /name="JWT" value="([^"]+)"/.exec(html)![1]!;
    const posted = await fetch(`${platform.url}/deep-link-return`, { method: "POST", body: new URLSearchParams({ JWT: jwt }) });
    expect(posted.status).toBe(200);
    const received = platform.state.deepLinkResponses.at(-1)!;
    expect(received.verified).toBe(true);
    const [item] = received.payload![`${DL_CLAIM}content_items`] as Record<string, Record<string, unknown>>[];
    expect(item!.custom).toEqual({ assignment_id: expect.any(String), problem: "multi-choice" });
    expect(item!.title).toBe("One problem of every answer grader: Multiple choice, partial credit");
  });

  it("refuses a student, a token of a plain launch, an unknown problem, and no token; nothing is created", async () => {
    const before = await tool.h.db.assignment.count();
    const student = await dlLaunch("stu-dl-2", [ROLES.learner]);
    const s = await deepLink(String(student.json.token), { problemSet: "grader-zoo" });
    expect([s.status, (await s.json()).error.code]).toEqual([403, "FORBIDDEN"]);
    const plain = await launch(tool, platform, {
      claims: platform.launchClaims({ sub: "prof-dl", roles: [ROLES.instructor], contextId: "ctx-dl" }),
    });
    const p = await deepLink(String(plain.json.token), { problemSet: "grader-zoo" });
    expect([p.status, (await p.json()).error.code]).toEqual([403, "LTI_NOT_DEEP_LINKING"]);
    const dl = await dlLaunch();
    const u = await deepLink(String(dl.json.token), { problemSet: "grader-zoo", problem: "no-such-problem" });
    expect([u.status, (await u.json()).error.code]).toEqual([422, "UNKNOWN_PROBLEM"]);
    const none = await fetch(`${tool.base}/lti/deep-link`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: "{}",
    });
    expect(none.status).toBe(400); // the body is checked before anything else: problemSet is required
    const anon = await deepLink("agt_not-a-token", { problemSet: "grader-zoo" });
    expect([anon.status, (await anon.json()).error.code]).toEqual([401, "INVALID_TOKEN"]);
    expect(await tool.h.db.assignment.count()).toBe(before);
  });
});
