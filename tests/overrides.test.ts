import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assignmentRecords } from "../src/services/gradebook/records.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";
import { enroll, mkCourse, mkUser, type Person } from "./helpers/people.ts";
import { keyedSet, waitForRegrade } from "./helpers/regrade-sets.ts";
import { uploadBundle } from "./helpers/set-bundles.ts";

/** Manual overrides: bounds, who may, the audit row in the same transaction, the history, and regrades that keep or clear them. */

let h: Harness;
let w: World;
let outsider: Person;
let assignmentId: string;
let subId: string;

const staff = () => w.instructor.token;
const put = (token: string, body: unknown) => h.call("PUT", `/v1/submissions/${subId}/grade`, { token, body });
const view = async (token: string) => (await h.call("GET", `/v1/submissions/${subId}`, { token })).json();
const recordOf = async () =>
  (await assignmentRecords(h.db, assignmentId, { userId: w.students[0]!.id }))[0]!.problems.find((p) => p.problem === "pick")!;

beforeAll(async () => {
  h = await createHarness("overrides");
  w = await createWorld(h, { students: 2 });
  const other = await mkCourse(h, w.adminToken, "other-course");
  outsider = await enroll(h, w.adminToken, other, await mkUser(h, w.adminToken, "prof-other@example.org"), "instructor");
  expect((await uploadBundle(h, w.instructor.token, await keyedSet("ovr", { pick: "red", num: 1 }))).statusCode).toBe(201);
  assignmentId = await createAssignment(h, w, { problemSet: "ovr" });
  h.startWorker();
  const s = w.students[0]!;
  const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/pick/submissions`, {
    token: s.token,
    body: { answer: { selected: ["red"] } },
  });
  subId = res.json().id;
  // A grader thread's first start is slow on a loaded machine.
  expect(await waitForGrade(h, subId, s.token, 60_000)).toMatchObject({ status: "graded", score: 2 });
}, 120_000);
afterAll(() => h?.close());

describe("PUT /v1/submissions/{id}/grade", () => {
  it("refuses a score outside [0, the problem's points], saying the range, and writes nothing", async () => {
    for (const score of [-1, 2.5]) {
      const res = await put(staff(), { score, comment: "x" });
      expect(res.statusCode).toBe(422);
      expect(res.json().error).toMatchObject({ code: "SCORE_OUT_OF_RANGE", details: { min: 0, max: 2 } });
      expect(res.json().error.message).toMatch(/between 0 and 2/);
    }
    expect((await put(staff(), { score: "2", comment: "x" })).statusCode).toBe(400);
    expect(await h.db.scoreOverride.count()).toBe(0);
  });

  it("is for course staff: the student themself 403, a classmate and another course's instructor 404", async () => {
    expect((await put(w.students[0]!.token, { score: 2, comment: "me" })).statusCode).toBe(403);
    expect((await put(w.students[1]!.token, { score: 2, comment: "x" })).statusCode).toBe(404);
    expect((await put(outsider.token, { score: 2, comment: "x" })).statusCode).toBe(404);
    expect(await h.db.scoreOverride.count()).toBe(0);
  });

  it("overrides the score: the views, the score of record and an audit row", async () => {
    const res = await put(staff(), { score: 1.5, comment: "Right idea, sloppy reasoning." });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      score: 1.5,
      override: { score: 1.5, comment: "Right idea, sloppy reasoning.", byId: w.instructor.id },
    });
    const mine = await view(w.students[0]!.token);
    expect(mine.score).toBe(1.5);
    expect(mine.override).toEqual({ score: 1.5, comment: "Right idea, sloppy reasoning.", at: expect.any(String) });
    expect(await recordOf()).toMatchObject({ score: 1.5, rawScore: 2, override: { score: 1.5 } });
    const o = await h.db.scoreOverride.findFirstOrThrow({ where: { submissionId: subId } });
    const events = await h.db.auditEvent.findMany({ where: { action: "grade.override", entityId: subId } });
    expect(events.map((e) => [e.actorId, (e.data as { overrideId: string }).overrideId])).toEqual([[w.instructor.id, o.id]]);
  });

  it("writes the override and its audit row in one transaction: when the audit insert fails, no override remains", async () => {
    await h.db.$executeRawUnsafe(`
      CREATE FUNCTION g2_refuse_audit() RETURNS trigger AS $$
      BEGIN
        IF NEW.data->>'comment' = 'audit-fails' THEN RAISE EXCEPTION 'audit refused for the test'; END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql`);
    await h.db.$executeRawUnsafe(
      `CREATE TRIGGER g2_refuse_audit BEFORE INSERT ON "AuditEvent" FOR EACH ROW EXECUTE FUNCTION g2_refuse_audit()`,
    );
    try {
      const res = await put(staff(), { score: 0, comment: "audit-fails" });
      expect(res.statusCode).toBeGreaterThanOrEqual(500);
      expect(await h.db.scoreOverride.count({ where: { comment: "audit-fails" } })).toBe(0);
      expect((await view(staff())).score).toBe(1.5);
    } finally {
      await h.db.$executeRawUnsafe(`DROP TRIGGER g2_refuse_audit ON "AuditEvent"`);
      await h.db.$executeRawUnsafe(`DROP FUNCTION g2_refuse_audit()`);
    }
  });
});

describe("overrides and regrades", () => {
  it("a regrade keeps the override: the score of record does not move", async () => {
    const res = await h.call("POST", `/v1/submissions/${subId}/regrade`, { token: staff() });
    expect(res.statusCode).toBe(202);
    expect(await waitForRegrade(h, res.json().regradeId, staff())).toMatchObject({ total: 1, done: 1, changes: [] });
    expect(await view(staff())).toMatchObject({ score: 1.5, override: { score: 1.5 } });
  });

  it("with clearOverrides the override is cleared (who, when) and the report shows the automatic score back", async () => {
    const s0 = w.students[0]!.id;
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/regrade`, {
      token: staff(),
      body: { userId: s0, clearOverrides: true },
    });
    expect(res.statusCode).toBe(202);
    const report = await waitForRegrade(h, res.json().id, staff());
    expect(report.changes).toEqual([
      { userId: s0, name: "student0-dl-101", problem: "pick", old: 1.5, new: 2 },
      { userId: s0, name: "student0-dl-101", problem: null, old: 1.5, new: 2 },
    ]);
    const o = await h.db.scoreOverride.findFirstOrThrow({ where: { submissionId: subId } });
    expect(o.clearedById).toBe(w.instructor.id);
    expect(o.clearedAt).not.toBeNull();
    expect(await view(staff())).toMatchObject({ score: 2, override: null });
    const start = await h.db.auditEvent.findFirstOrThrow({ where: { action: "regrade.start", entityId: res.json().id } });
    expect(start.data).toMatchObject({ clearOverrides: true, cleared: 1, total: 1 });
  });
});

describe("DELETE and the history", () => {
  it("DELETE clears the standing override (audited once); again is a no-op", async () => {
    expect((await put(staff(), { score: 0.5, comment: "Second look." })).json().score).toBe(0.5);
    const cleared = await h.call("DELETE", `/v1/submissions/${subId}/grade`, { token: staff() });
    expect(cleared.statusCode).toBe(200);
    expect(cleared.json()).toMatchObject({ score: 2, override: null });
    expect((await h.call("DELETE", `/v1/submissions/${subId}/grade`, { token: staff() })).statusCode).toBe(200);
    expect(await h.db.auditEvent.count({ where: { action: "grade.override.clear", entityId: subId } })).toBe(1);
    expect((await h.call("DELETE", `/v1/submissions/${subId}/grade`, { token: w.students[0]!.token })).statusCode).toBe(403);
  });

  it("lists every automatic run and every override in time order, with who gave and who cleared them", async () => {
    const res = await h.call("GET", `/v1/submissions/${subId}/grade-history`, { token: staff() });
    expect(res.statusCode).toBe(200);
    const rows = res
      .json()
      .history.map((e: Record<string, unknown>) => [e.type, e.run ?? null, e.score, e.comment, e.by ?? null, e.clearedBy ?? null]);
    expect(rows).toEqual([
      ["auto", 1, 2, null, null, null],
      ["override", null, 1.5, "Right idea, sloppy reasoning.", "prof-dl-101", "prof-dl-101"],
      ["auto", 2, 2, null, null, null],
      ["auto", 3, 2, null, null, null],
      ["override", null, 0.5, "Second look.", "prof-dl-101", "prof-dl-101"],
    ]);
    expect((await h.call("GET", `/v1/submissions/${subId}/grade-history`, { token: w.students[0]!.token })).statusCode).toBe(403);
    expect((await h.call("GET", `/v1/submissions/${subId}/grade-history`, { token: outsider.token })).statusCode).toBe(404);
  });
});
