/**
 * Grade passback end to end: real launches from the platform emulator, real submissions graded by a real worker, and
 * the scores the emulator's AGS endpoint receives — exact bodies, exactly once, through 503s, a 400 dead letter and
 * its retry, and a newer score arriving while an older one is in flight.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ltiPassbackKind } from "../src/jobs/lti-passback.ts";
import { recoverOnce } from "../src/jobs/outbox.ts";
import { deliverPassback } from "../src/lti/passback-send.ts";
import { scoresMayHaveChanged } from "../src/services/gradebook/notify.ts";
import { ltiCourse, studentLaunch, submit, until, type LtiCourse } from "./lti/course-setup.ts";
import { SCOPES, startPlatform, type Platform } from "./lti/platform.ts";
import { startTool, type Tool } from "./lti/tool.ts";

let tool: Tool;
let platform: Platform;
let course: LtiCourse;
const silent = { info() {}, warn() {}, error() {} };

beforeAll(async () => {
  tool = await startTool("lti_passback", { LTI_PASSBACK_BACKOFF_MS: "100", LTI_PASSBACK_ATTEMPTS: "4", SWEEP_INTERVAL_S: "1" });
  platform = await startPlatform();
  await tool.register(platform);
  course = await ltiCourse(tool, platform, "ctx-pb", "Homework 1");
  tool.h.startWorker();
});
afterAll(async () => {
  await tool?.close();
  await platform?.close();
});

const scoresOf = (sub: string) => platform.state.scores.filter((s) => s.body.userId === sub).map((s) => s.body);
const rowsOf = (userId: string) => tool.h.db.scorePassback.findMany({ where: { userId }, orderBy: { createdAt: "asc" } });
/** Waits for `n` scores of `sub`, then a little longer, so a duplicate would have time to show up. */
async function scoresAfter(sub: string, n: number) {
  await until(`${n} scores for ${sub}`, () => scoresOf(sub).length >= n);
  await new Promise((r) => setTimeout(r, 400));
  return scoresOf(sub);
}

describe("score passback", () => {
  it("sends the score of record once per change with the AGS body, into one line item", async () => {
    const stu = await studentLaunch(tool, platform, course, "stu-1");
    const before = new Date();
    await submit(tool, stu.token, course.assignmentId, "a", "yes");
    const [first] = await scoresAfter("stu-1", 1);
    expect(first).toEqual({
      userId: "stu-1",
      scoreGiven: 2,
      scoreMaximum: 5,
      comment: "Autograder: 2 / 5 (a 2/2, b –/3)",
      timestamp: expect.any(String),
      activityProgress: "Completed",
      gradingProgress: "FullyGraded",
    });
    expect(Date.parse(String(first!.timestamp))).toBeGreaterThanOrEqual(before.getTime() - 5);

    // The line item: made once, for this assignment and its link, worth the pinned revision's 5 points.
    const items = platform.lineItemsOf("ctx-pb");
    expect(items).toEqual([
      {
        id: expect.any(String),
        label: "Homework 1",
        scoreMaximum: 5,
        resourceId: course.assignmentId,
        resourceLinkId: course.resourceLinkId,
        tag: "autograder",
      },
    ]);
    expect(platform.state.scores[0]!.lineItemId).toBe(items[0]!.id);

    // A better answer on b: a second score, 5 of 5. A wrong answer after it changes nothing (best policy): no third.
    await submit(tool, stu.token, course.assignmentId, "b", "yes");
    await until("second score", () => scoresOf("stu-1").length === 2);
    await submit(tool, stu.token, course.assignmentId, "b", "no");
    await until("third grade", async () => (await tool.h.db.submission.count({ where: { userId: stu.userId, status: "graded" } })) === 3);
    const all = await scoresAfter("stu-1", 2);
    expect(all.map((s) => [s.scoreGiven, s.scoreMaximum])).toEqual([
      [2, 5],
      [5, 5],
    ]);
    expect(Date.parse(String(all[1]!.timestamp))).toBeGreaterThan(Date.parse(String(all[0]!.timestamp)));
    expect((await rowsOf(stu.userId)).map((r) => [r.status, r.scoreGiven, r.attempts])).toEqual([
      ["sent", 2, 1],
      ["sent", 5, 1],
    ]);

    // A second student's launch and grade reuse the line item.
    const other = await studentLaunch(tool, platform, course, "stu-2");
    await submit(tool, other.token, course.assignmentId, "b", "yes");
    expect((await scoresAfter("stu-2", 1)).map((s) => s.scoreGiven)).toEqual([3]);
    expect(platform.lineItemsOf("ctx-pb")).toHaveLength(1);
    expect(await tool.h.db.ltiLineItem.count()).toBe(1);

    // Service tokens: granted with a proper client assertion, and cached (one grant per scope set, not per score).
    const grants = platform.state.tokensIssued.filter((g) => !g.scopes.includes(SCOPES.memberships));
    expect(grants.map((g) => g.scopes.join(" ")).sort()).toEqual([SCOPES.lineItem, SCOPES.score]);
    for (const g of grants) {
      expect(g.assertion).toMatchObject({ iss: platform.clientId, sub: platform.clientId, aud: `${platform.url}/token` });
      expect(g.assertion.exp! - g.assertion.iat!).toBeLessThanOrEqual(300);
    }
  });

  it("survives the LMS answering 503 twice: one score recorded, after three tries", async () => {
    const stu = await studentLaunch(tool, platform, course, "stu-503");
    platform.failNextScores(2, 503);
    await submit(tool, stu.token, course.assignmentId, "a", "yes");
    expect((await scoresAfter("stu-503", 1)).map((s) => s.scoreGiven)).toEqual([2]);
    expect(platform.state.scoreAttempts.filter((a) => (a.body as { userId: string }).userId === "stu-503").map((a) => a.status)).toEqual([
      503, 503, 200,
    ]);
    expect((await rowsOf(stu.userId)).map((r) => [r.status, r.attempts, r.lastStatus])).toEqual([["sent", 3, 200]]);
  });

  it("honours Retry-After on 429", async () => {
    const stu = await studentLaunch(tool, platform, course, "stu-429");
    platform.failNextScores(1, 429, { retryAfter: "2" });
    await submit(tool, stu.token, course.assignmentId, "a", "yes");
    await scoresAfter("stu-429", 1);
    const times = platform.state.scoreAttempts.filter((a) => (a.body as { userId: string }).userId === "stu-429");
    expect(times.map((a) => a.status)).toEqual([429, 200]);
    const row = (await rowsOf(stu.userId))[0]!;
    // Backoff alone would be 100 ms; Retry-After asked for 2 s.
    expect(row.sentAt!.getTime() - row.createdAt.getTime()).toBeGreaterThanOrEqual(1900);
  });

  it("a 400 is a dead letter at once, shown to staff with the LMS's answer; an instructor's retry sends it", async () => {
    const stu = await studentLaunch(tool, platform, course, "stu-400");
    platform.failNextScores(1, 400, { body: { error: "user stu-400 is not enrolled in this section" } });
    await submit(tool, stu.token, course.assignmentId, "b", "yes");
    const dead = await until("dead letter", async () => (await rowsOf(stu.userId)).find((r) => r.status === "dead"));
    expect([dead.attempts, dead.lastStatus]).toEqual([1, 400]);
    expect(scoresOf("stu-400")).toEqual([]);

    const list = await tool.h.call("GET", `/v1/courses/${course.courseId}/passbacks?status=dead`, { token: course.instructorToken });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual([
      expect.objectContaining({
        id: dead.id,
        assignmentId: course.assignmentId,
        assignmentTitle: "Homework 1",
        userId: stu.userId,
        status: "dead",
        scoreGiven: 3,
        scoreMaximum: 5,
        attempts: 1,
        lastStatus: 400,
        lastResponse: '{"error":"user stu-400 is not enrolled in this section"}',
        lms: { issuer: platform.issuer, contextId: "ctx-pb", title: "Course ctx-pb" },
      }),
    ]);

    const retry = await tool.h.call("POST", `/v1/courses/${course.courseId}/passbacks/${dead.id}/retry`, {
      token: course.instructorToken,
    });
    expect([retry.statusCode, retry.json()]).toEqual([202, { id: dead.id, status: "pending" }]);
    expect((await scoresAfter("stu-400", 1)).map((s) => s.scoreGiven)).toEqual([3]);
    expect((await rowsOf(stu.userId)).map((r) => [r.status, r.attempts, r.lastStatus])).toEqual([["sent", 1, 200]]);
    const again = await tool.h.call("POST", `/v1/courses/${course.courseId}/passbacks/${dead.id}/retry`, {
      token: course.instructorToken,
    });
    expect([again.statusCode, again.json().error.code]).toEqual([409, "NOT_DEAD"]);
  });

  it("gives up after LTI_PASSBACK_ATTEMPTS transient failures (dead, last answer kept)", async () => {
    const stu = await studentLaunch(tool, platform, course, "stu-down");
    platform.failNextScores(4, 502, { body: { error: "bad gateway" } });
    await submit(tool, stu.token, course.assignmentId, "a", "yes");
    const dead = await until("dead after retries", async () => (await rowsOf(stu.userId)).find((r) => r.status === "dead"));
    expect([dead.attempts, dead.lastStatus, dead.lastResponse]).toEqual([4, 502, '{"error":"bad gateway"}']);
    expect(scoresOf("stu-down")).toEqual([]);
  });

  it("a newer score arriving while the older one is in flight is sent next; a duplicate delivery sends nothing twice", async () => {
    const stu = await studentLaunch(tool, platform, course, "stu-race");
    platform.state.scoreDelayMs = 700;
    try {
      const subA = await submit(tool, stu.token, course.assignmentId, "a", "yes");
      // While the 2/5 post is held by the LMS, the score becomes 5/5 (an override on a, then b graded right).
      await until("the 2/5 row", () => tool.h.db.scorePassback.findFirst({ where: { userId: stu.userId } }));
      const row = (await rowsOf(stu.userId))[0]!;
      // Two more deliveries of the same row at once (a duplicate job): the send lock lets one talk to the LMS.
      const settings = { attempts: 4, backoffMs: 100, timeoutMs: 5_000 };
      const dupes = Promise.all([deliverPassback(tool.h.db, row.id, settings), deliverPassback(tool.h.db, row.id, settings)]);
      await new Promise((r) => setTimeout(r, 200));
      await tool.h.db.scoreOverride.create({ data: { submissionId: subA, score: 1, comment: "partial credit" } });
      await scoresMayHaveChanged({ db: tool.h.db, queue: tool.h.queue, log: silent }, course.assignmentId, [stu.userId]);
      await dupes;
      const got = await scoresAfter("stu-race", 2);
      expect(got.map((s) => s.scoreGiven)).toEqual([2, 1]);
      expect((await rowsOf(stu.userId)).map((r) => [r.status, r.scoreGiven])).toEqual([["sent", 1]]);
    } finally {
      platform.state.scoreDelayMs = 0;
    }
  });

  it("a pending score whose job was lost (the process died before enqueuing) is sent by the outbox, once", async () => {
    const stu = await studentLaunch(tool, platform, course, "stu-lost");
    const context = await tool.h.db.ltiContext.findFirstOrThrow({ where: { courseId: course.courseId } });
    // The row as writeScore commits it, with no job in Redis.
    await tool.h.db.scorePassback.create({
      data: {
        contextRowId: context.id,
        assignmentId: course.assignmentId,
        userId: stu.userId,
        scoreGiven: 4,
        scoreMaximum: 5,
        comment: "recovered",
      },
    });
    expect(await recoverOnce(tool.h.db, tool.h.queue, { graceMs: 0 }, [ltiPassbackKind])).toBe(1);
    expect((await scoresAfter("stu-lost", 1)).map((s) => [s.scoreGiven, s.comment])).toEqual([[4, "recovered"]]);
    // Sent rows are not recovered again.
    expect(await recoverOnce(tool.h.db, tool.h.queue, { graceMs: 0 }, [ltiPassbackKind])).toBe(0);
  });

  it("two grades finishing together: the LMS ends with the score of both, never a stale one", async () => {
    const stu = await studentLaunch(tool, platform, course, "stu-both");
    await Promise.all([submit(tool, stu.token, course.assignmentId, "a", "yes"), submit(tool, stu.token, course.assignmentId, "b", "yes")]);
    await until("both graded", async () => (await tool.h.db.submission.count({ where: { userId: stu.userId, status: "graded" } })) === 2);
    await until("5/5 sent", async () => (await rowsOf(stu.userId)).some((r) => r.status === "sent" && r.scoreGiven === 5));
    const got = await scoresAfter("stu-both", 1);
    // One or two posts (2 or 3 first, if it left before the other grade), the last one 5/5; nothing pending.
    expect(got.at(-1)!.scoreGiven).toBe(5);
    expect(got.length).toBeLessThanOrEqual(2);
    expect((await rowsOf(stu.userId)).every((r) => r.status === "sent")).toBe(true);
  });

  it("lists passbacks newest first, filtered by status, in pages linked by rel=next", async () => {
    const all = await tool.h.db.scorePassback.findMany({
      orderBy: [{ updatedAt: "desc" }, { id: "desc" }],
      select: { id: true, status: true },
    });
    expect(all.length).toBeGreaterThan(4);
    const seen: string[] = [];
    let url: string | null = `/v1/courses/${course.courseId}/passbacks?limit=2`;
    while (url) {
      const res = await tool.h.call("GET", url, { token: course.instructorToken });
      expect(res.statusCode).toBe(200);
      seen.push(...res.json().map((r: { id: string }) => r.id));
      const link = res.headers.link as string | undefined;
      url = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null;
    }
    expect(seen).toEqual(all.map((r) => r.id));
    const dead = await tool.h.call("GET", `/v1/courses/${course.courseId}/passbacks?status=dead`, { token: course.instructorToken });
    expect(dead.json().map((r: { id: string }) => r.id)).toEqual(all.filter((r) => r.status === "dead").map((r) => r.id));
  });
});
