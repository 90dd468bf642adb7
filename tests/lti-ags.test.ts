/**
 * Assignment and Grade Services against the platform emulator: line items made once (even by concurrent passbacks),
 * a platform's own line item adopted, service tokens cached and renewed after a 401, and the small protocol helpers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureLineItem, NoLineItemService, retryAfterMs, scoresUrl } from "../src/lti/ags.ts";
import { nextLink } from "../src/lti/nrps.ts";
import { forgetToken, serviceFetch, serviceToken } from "../src/lti/service-token.ts";
import { ltiCourse, submit, until, type LtiCourse } from "./lti/course-setup.ts";
import { MEDIA, ROLES, SCOPES, startPlatform, type Platform } from "./lti/platform.ts";
import { launch, startTool, type Tool } from "./lti/tool.ts";

let tool: Tool;
let platform: Platform;
let course: LtiCourse;
let contextRowId: string;

beforeAll(async () => {
  tool = await startTool("lti_ags");
  platform = await startPlatform();
  await tool.register(platform);
  course = await ltiCourse(tool, platform, "ctx-ags", "Lab 1");
  contextRowId = (await tool.h.db.ltiContext.findFirstOrThrow({ where: { courseId: course.courseId } })).id;
});
afterAll(async () => {
  await tool?.close();
  await platform?.close();
});

const newAssignment = async (title: string) => {
  const res = await tool.h.call("POST", `/v1/courses/${course.courseId}/assignments`, {
    token: tool.world.adminToken,
    body: { problemSet: "lti-ctx-ags", title },
  });
  expect(res.statusCode).toBe(201);
  return String(res.json().id);
};
const platformRow = () => tool.h.db.ltiPlatform.findFirstOrThrow({ where: { issuer: platform.issuer } });

describe("line items", () => {
  it("are created once per (context, assignment), even by five passbacks at once", async () => {
    const urls = await Promise.all(Array.from({ length: 5 }, () => ensureLineItem(tool.h.db, contextRowId, course.assignmentId, 5_000)));
    const items = platform.lineItemsOf("ctx-ags");
    expect(items).toEqual([
      { id: expect.any(String), label: "Lab 1", scoreMaximum: 5, resourceId: course.assignmentId, tag: "autograder" },
    ]);
    expect(new Set(urls)).toEqual(new Set([`${platform.url}/lineitems/${items[0]!.id}`]));
    expect(await tool.h.db.ltiLineItem.findMany({ where: { contextRowId }, select: { assignmentId: true, url: true } })).toEqual([
      { assignmentId: course.assignmentId, url: urls[0] },
    ]);
    // Later calls answer from our row, without asking the platform.
    const tokens = platform.state.tokensIssued.length;
    expect(await ensureLineItem(tool.h.db, contextRowId, course.assignmentId, 5_000)).toBe(urls[0]);
    expect(platform.lineItemsOf("ctx-ags")).toHaveLength(1);
    expect(platform.state.tokensIssued.length).toBe(tokens);
  });

  it("adopts the platform's line item for the assignment (e.g. made from a deep link) instead of making another", async () => {
    const assignmentId = await newAssignment("Lab 2");
    const id = String(++platform.state.lineItemCount);
    platform.state.lineItems.set("ctx-ags", [
      ...platform.lineItemsOf("ctx-ags"),
      { id, label: "Lab 2 (LMS)", scoreMaximum: 5, resourceId: assignmentId },
    ]);
    expect(await ensureLineItem(tool.h.db, contextRowId, assignmentId, 5_000)).toBe(`${platform.url}/lineitems/${id}`);
    expect(platform.lineItemsOf("ctx-ags").map((li) => li.label)).toEqual(["Lab 1", "Lab 2 (LMS)"]);
  });

  it("refuses a line item the platform places on another host: no bearer token or score goes there", async () => {
    const assignmentId = await newAssignment("Lab 4");
    const id = String(++platform.state.lineItemCount);
    platform.state.lineItems.set("ctx-ags", [
      ...platform.lineItemsOf("ctx-ags"),
      { id, label: "Lab 4", scoreMaximum: 5, resourceId: assignmentId, href: "https://elsewhere.example/lineitems/1" },
    ]);
    await expect(ensureLineItem(tool.h.db, contextRowId, assignmentId, 5_000)).rejects.toThrow(/another host/);
    expect(await tool.h.db.ltiLineItem.count({ where: { assignmentId } })).toBe(0);
  });

  it("needs the lineitem scope: a context without it is refused by name", async () => {
    const assignmentId = await newAssignment("Lab 3");
    await tool.h.db.ltiContext.update({ where: { id: contextRowId }, data: { scopes: [SCOPES.score] } });
    try {
      await expect(ensureLineItem(tool.h.db, contextRowId, assignmentId, 5_000)).rejects.toBeInstanceOf(NoLineItemService);
    } finally {
      await tool.h.db.ltiContext.update({
        where: { id: contextRowId },
        data: { scopes: [SCOPES.lineItem, SCOPES.resultRead, SCOPES.score, SCOPES.memberships] },
      });
    }
    expect(await tool.h.db.ltiLineItem.count({ where: { assignmentId } })).toBe(0);
  });
});

describe("deep linking → line item → score", () => {
  it("scores of a deep-linked assignment land in the line item the LMS made from the link; the tool makes none", async () => {
    const dl = await launch(tool, platform, {
      claims: platform.launchClaims({
        sub: "prof-ctx-ags",
        roles: [ROLES.instructor],
        contextId: "ctx-ags",
        deepLinking: { data: "ags-dl" },
      }),
    });
    expect(dl.status).toBe(200);
    const made = await fetch(`${tool.base}/lti/deep-link`, {
      method: "POST",
      headers: { authorization: `Bearer ${dl.json.token}`, "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ problemSet: "lti-ctx-ags" }),
    });
    expect(made.status).toBe(200);
    const { returnUrl, jwt } = await made.json();
    const back = await fetch(returnUrl, { method: "POST", body: new URLSearchParams({ JWT: jwt }) });
    expect(back.status).toBe(200);
    const placed = platform.state.deepLinkResponses.at(-1)!.links![0]!;
    expect(placed.lineItemId).toBeDefined();
    const itemsBefore = platform.lineItemsOf("ctx-ags").length;

    const stu = await launch(tool, platform, {
      claims: platform.launchClaims({
        sub: "dl-student",
        contextId: "ctx-ags",
        resourceLinkId: placed.resourceLinkId,
        custom: placed.custom,
        lineItemId: placed.lineItemId,
      }),
    });
    expect(stu.status).toBe(200);
    const assignmentId = String(stu.json.assignmentId);
    tool.h.startWorker();
    await submit(tool, String(stu.json.token), assignmentId, "b", "yes");
    const score = await until("score on the deep-linked line item", () =>
      platform.state.scores.find((s) => s.body.userId === "dl-student"),
    );
    expect([score.lineItemId, score.body.scoreGiven, score.body.scoreMaximum]).toEqual([placed.lineItemId, 3, 5]);
    expect(platform.lineItemsOf("ctx-ags")).toHaveLength(itemsBefore);
    expect(await tool.h.db.ltiLineItem.findMany({ where: { assignmentId }, select: { url: true } })).toEqual([
      { url: `${platform.url}/lineitems/${placed.lineItemId}` },
    ]);
  });
});

describe("service tokens", () => {
  it("are cached per scope set and renewed once after a 401", async () => {
    const p = await platformRow();
    const scopes = [SCOPES.lineItemRead];
    const before = platform.state.tokensIssued.length;
    const t1 = await serviceToken(tool.h.db, p, scopes, 5_000);
    expect(await serviceToken(tool.h.db, p, scopes, 5_000)).toBe(t1);
    expect(platform.state.tokensIssued.length).toBe(before + 1);
    const grant = platform.state.tokensIssued.at(-1)!;
    expect(grant.assertion).toMatchObject({ iss: p.clientId, sub: p.clientId, aud: p.authTokenUrl, jti: expect.any(String) });

    // The platform forgets every token: the next call gets 401, asks for a new token and succeeds.
    platform.state.tokensIssued = [];
    const res = await serviceFetch(
      tool.h.db,
      p,
      scopes,
      `${platform.url}/contexts/ctx-ags/lineitems`,
      { headers: { accept: MEDIA.lineItems } },
      5_000,
    );
    expect(res.status).toBe(200);
    expect(platform.state.tokensIssued).toHaveLength(1);
    expect(platform.state.tokensIssued[0]!.token).not.toBe(t1);
    forgetToken(p.id, scopes);
  });

  it("a refused grant names the platform's answer", async () => {
    const p = await platformRow();
    await expect(
      serviceToken(tool.h.db, { ...p, id: crypto.randomUUID(), clientId: "not-registered" }, [SCOPES.score], 5_000),
    ).rejects.toThrow(/answered 401/);
    expect(platform.state.tokenErrors.at(-1)).toMatch(/client assertion/);
  });
});

describe("protocol helpers", () => {
  it("builds <lineitem>/scores keeping the query, reads Retry-After both ways, and finds rel=next among links", () => {
    expect(scoresUrl("https://lms.example/api/lti/courses/1/line_items/7?type=x")).toBe(
      "https://lms.example/api/lti/courses/1/line_items/7/scores?type=x",
    );
    expect(scoresUrl("https://lms.example/li/7/")).toBe("https://lms.example/li/7/scores");
    expect(retryAfterMs("3")).toBe(3000);
    expect(retryAfterMs(new Date(Date.now() + 10_000).toUTCString(), Date.now())).toBeGreaterThan(8000);
    expect(retryAfterMs("soon")).toBeNull();
    expect(nextLink('<https://lms/m?p=1>; rel="prev", <https://lms/m?p=3>; rel="next"')).toBe("https://lms/m?p=3");
    expect(nextLink('<https://lms/m?p=9>; rel="last next"')).toBe("https://lms/m?p=9");
    expect(nextLink('<https://lms/m?p=1>; rel="prev"')).toBeNull();
    expect(nextLink(null)).toBeNull();
  });
});
