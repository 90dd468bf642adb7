import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerKey, groupAnswers, normaliseText } from "../src/services/gradebook/answer-groups.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

/**
 * The review queue: answers the text grader flags (here a misconception, "the loss decreases", caps the
 * score and asks for a human) grouped by normalised answer, and one request grading a whole group.
 */

const SAME_A = "Decreases the loss.";
const SAME_B = "the loss decreases";
const LONG_A = "The optimizer steadily decreases the training loss over many epochs";
const LONG_B = "The optimizer steadily decreases the training loss over many long epochs";
const OTHER = "It generalizes because dropout regularizes, and the loss decreases";
const CLEAN = "Dropout helps it generalize"; // full marks, not flagged

describe("the grouping rule", () => {
  it("puts reordered, re-punctuated and re-inflected answers together, and keeps negations and numbers apart", () => {
    expect(normaliseText(SAME_A).key).toBe(normaliseText(SAME_B).key);
    expect(normaliseText("The loss does NOT decrease").key).not.toBe(normaliseText(SAME_B).key);
    expect(normaliseText("It costs 1,000.50 dollars").key).toBe(normaliseText("it costs 1000.5 dollars").key);
    expect(normaliseText("two layers").key).toBe(normaliseText("2 layers").key);
    expect(normaliseText("3 layers").key).not.toBe(normaliseText("2 layers").key);
    const group = (xs: string[]) => groupAnswers(xs.map((x) => ({ item: x, answer: normaliseText(x) })));
    // Near-identical (one more word of seven): one group; a negated twin of a long answer is not.
    expect(normaliseText(LONG_A).key).not.toBe(normaliseText(LONG_B).key);
    expect(group([LONG_A, LONG_B])).toEqual([[LONG_A, LONG_B]]);
    expect(group([LONG_A, "The optimizer never steadily decreases the training loss over many epochs"])).toHaveLength(2);
    expect(group([SAME_A, SAME_B, OTHER])).toEqual([[SAME_A, SAME_B], [OTHER]]);
  });

  it("compares other answers as canonical JSON and models by hash", () => {
    expect(answerKey({ selected: ["a"], x: 1 }, null).key).toBe(answerKey({ x: 1, selected: ["a"] }, null).key);
    expect(answerKey({ value: 1 }, null).key).not.toBe(answerKey({ value: 2 }, null).key);
    expect(answerKey(null, "ab".repeat(32)).key).toBe(`model:${"ab".repeat(32)}`);
  });
});

describe("the review queue", () => {
  let h: Harness;
  let w: World;
  let assignmentId: string;
  const subs: Record<string, string> = {};

  const submit = async (student: number, text: string) => {
    const s = w.students[student]!;
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/explain/submissions`, {
      token: s.token,
      body: { answer: { text } },
    });
    expect(res.statusCode).toBe(202);
    // A grader thread's first start (tsx, wink's model) is slow on a loaded machine.
    await waitForGrade(h, res.json().id, s.token, 60_000);
    return res.json().id as string;
  };
  const queue = async (query = "") => {
    const res = await h.call("GET", `/v1/assignments/${assignmentId}/review${query}`, { token: w.instructor.token });
    expect(res.statusCode).toBe(200);
    return res.json().groups as { groupId: string; problem: string; size: number; submissionIds: string[]; representative: unknown }[];
  };

  beforeAll(async () => {
    h = await createHarness("review_queue");
    await h.loadSet("tests/fixtures/sets/review-text");
    w = await createWorld(h, { students: 7 });
    assignmentId = await createAssignment(h, w, { problemSet: "review-text" });
    h.startWorker();
    subs.sameA = await submit(0, SAME_A);
    subs.sameB = await submit(1, SAME_B);
    subs.longA = await submit(2, LONG_A);
    subs.longB = await submit(3, LONG_B);
    subs.other = await submit(4, OTHER);
    subs.clean = await submit(5, CLEAN);
  }, 180_000);
  afterAll(() => h?.close());

  it("lists the flagged submissions in groups of one answer each, stable ids, unflagged ones left out", async () => {
    const groups = await queue();
    const members = groups.map((g) => [...g.submissionIds].sort());
    expect(members).toEqual(expect.arrayContaining([[subs.sameA, subs.sameB].sort(), [subs.longA, subs.longB].sort(), [subs.other]]));
    expect(groups).toHaveLength(3);
    expect(groups.every((g) => g.problem === "explain")).toBe(true);
    expect(groups.find((g) => g.size === 1)!.representative).toEqual({ text: OTHER });
    // The same membership, the same id; the problem filter.
    expect((await queue()).map((g) => g.groupId)).toEqual(groups.map((g) => g.groupId));
    expect(await queue("?problem=explain")).toEqual(groups);
    expect(await queue("?problem=nothing-here")).toEqual([]);
  });

  it("grades every member of a group with one request, in one transaction with its audit rows", async () => {
    const group = (await queue()).find((g) => g.submissionIds.includes(subs.sameA!))!;
    const url = `/v1/assignments/${assignmentId}/review/groups/${group.groupId}/grade`;
    const tooMuch = await h.call("POST", url, { token: w.instructor.token, body: { score: 2.5, comment: "x" } });
    expect(tooMuch.statusCode).toBe(422);
    expect(tooMuch.json().error.message).toMatch(/between 0 and 2/);
    const asStudent = await h.call("POST", url, { token: w.students[0]!.token, body: { score: 1, comment: "x" } });
    expect(asStudent.statusCode).toBe(403);

    const res = await h.call("POST", url, {
      token: w.instructor.token,
      body: { score: 1, comment: "Half: a falling loss proves little." },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ graded: 2, groupId: group.groupId, problem: "explain" });
    for (const [id, student] of [
      [subs.sameA!, 0],
      [subs.sameB!, 1],
    ] as const) {
      const view = (await h.call("GET", `/v1/submissions/${id}`, { token: w.students[student]!.token })).json();
      expect(view.score).toBe(1);
      expect(view.override).toMatchObject({ score: 1, comment: "Half: a falling loss proves little." });
      expect(view.override.byId).toBeUndefined(); // students see the score and the comment, not who
      expect(await h.db.scoreOverride.count({ where: { submissionId: id, groupId: group.groupId } })).toBe(1);
      expect(await h.db.auditEvent.count({ where: { action: "grade.override", entityId: id } })).toBe(1);
    }
    expect(await h.db.auditEvent.count({ where: { action: "review.group.grade", entityId: assignmentId } })).toBe(1);
    // Graded members leave the queue; the other groups stay as they were.
    const after = await queue();
    expect(after).toHaveLength(2);
    expect(after.flatMap((g) => g.submissionIds)).not.toContain(subs.sameA);
    // The same group again: gone, so 409 with the current groups.
    const again = await h.call("POST", url, { token: w.instructor.token, body: { score: 1, comment: "x" } });
    expect(again.statusCode).toBe(409);
  });

  it("a group id that went stale (a new near-identical answer arrived) is a 409 with the new groups, and grades nobody", async () => {
    const stale = (await queue()).find((g) => g.submissionIds.includes(subs.longA!))!;
    const newcomer = await submit(6, "The optimizer steadily decreases the training loss over many epochs!");
    const res = await h.call("POST", `/v1/assignments/${assignmentId}/review/groups/${stale.groupId}/grade`, {
      token: w.instructor.token,
      body: { score: 0, comment: "No." },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe("REVIEW_GROUP_CHANGED");
    const fresh = res.json().error.details.groups.find((g: { submissionIds: string[] }) => g.submissionIds.includes(newcomer));
    expect([...fresh.submissionIds].sort()).toEqual([subs.longA, subs.longB, newcomer].sort());
    expect(fresh.groupId).not.toBe(stale.groupId);
    expect(await h.db.scoreOverride.count({ where: { submissionId: { in: [subs.longA!, subs.longB!, newcomer] } } })).toBe(0);
  }, 90_000);
});
