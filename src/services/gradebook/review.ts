import { createHash } from "node:crypto";
import type { Db } from "../../db.ts";
import { ConflictError, NotFoundError } from "../../errors.ts";
import type { GradingQueue } from "../../grading/queue.ts";
import { requireStaff } from "../access.ts";
import { audit } from "../audit.ts";
import type { Principal } from "../auth.ts";
import { answerKey, groupAnswers } from "./answer-groups.ts";
import { scoresMayHaveChanged } from "./notify.ts";
import { checkScore } from "./overrides.ts";

type Logger = { warn(obj: object, msg: string): void };

export interface ReviewGroup {
  groupId: string;
  problem: string;
  representative: unknown;
  size: number;
  submissionIds: string[];
  students: { userId: string; name: string }[];
}

/** Stable for the same membership: a group that gains or loses a member is another group, with another id. */
const groupIdOf = (problem: string, ids: string[]) =>
  createHash("sha256")
    .update(`${problem}\n${[...ids].sort().join(",")}`)
    .digest("hex")
    .slice(0, 32);

/**
 * The review queue: submissions whose current grade asks for a human (needsReview) and that no override
 * has settled yet, grouped by answer (answer-groups.ts), so a TA grades a group with one request.
 */
export class ReviewService {
  constructor(
    private readonly db: Db,
    private readonly queue: GradingQueue,
    private readonly log: Logger,
  ) {}

  private async staffAssignment(p: Principal, assignmentId: string) {
    const a = await this.db.assignment.findUnique({ where: { id: assignmentId } });
    if (!a) throw new NotFoundError("Assignment", assignmentId);
    await requireStaff(this.db, p, a.courseId);
    return a;
  }

  async groups(p: Principal, assignmentId: string, problem?: string): Promise<{ assignmentId: string; groups: ReviewGroup[] }> {
    await this.staffAssignment(p, assignmentId);
    return { assignmentId, groups: await this.load(assignmentId, problem) };
  }

  private async load(assignmentId: string, problem?: string): Promise<ReviewGroup[]> {
    const subs = await this.db.submission.findMany({
      where: {
        assignmentId,
        ...(problem ? { problemSlug: problem } : {}),
        status: { in: ["graded", "rejected"] },
        overrides: { none: { clearedAt: null } },
      },
      orderBy: [{ createdAt: "asc" }, { id: "asc" }],
      select: {
        id: true,
        problemSlug: true,
        answer: true,
        modelSha256: true,
        gradingRun: true,
        user: { select: { id: true, name: true } },
        grades: {
          where: { kind: "auto" },
          orderBy: [{ run: "desc" }, { createdAt: "desc" }],
          take: 1,
          select: { run: true, needsReview: true },
        },
      },
    });
    // The current run's grade only: a submission being regraded waits for its new grade before it is reviewed.
    const flagged = subs.filter((s) => s.grades[0]?.run === s.gradingRun && s.grades[0].needsReview);
    const byProblem = new Map<string, typeof flagged>();
    for (const s of flagged) byProblem.set(s.problemSlug, [...(byProblem.get(s.problemSlug) ?? []), s]);
    const out: ReviewGroup[] = [];
    for (const [slug, list] of [...byProblem].sort(([x], [y]) => (x < y ? -1 : 1))) {
      const grouped = groupAnswers(list.map((s) => ({ item: s, answer: answerKey(s.answer, s.modelSha256) })));
      for (const members of grouped) {
        const ids = members.map((m) => m.id);
        const students = [...new Map(members.map((m) => [m.user.id, { userId: m.user.id, name: m.user.name }])).values()];
        out.push({
          groupId: groupIdOf(slug, ids),
          problem: slug,
          representative: members[0]!.modelSha256 ? { modelSha256: members[0]!.modelSha256 } : members[0]!.answer,
          size: members.length,
          submissionIds: [...ids].sort(),
          students: students.sort((x, y) => x.name.localeCompare(y.name)),
        });
      }
    }
    return out;
  }

  /**
   * Every member gets the override, in one transaction with its audit rows: all or none. A group id that no
   * longer matches (new submissions, an override or a regrade since the queue was read) is a 409 with the
   * current groups, so the grader looks again rather than grading members they did not see.
   */
  async gradeGroup(p: Principal, assignmentId: string, groupId: string, body: { score: number; comment?: string | null }) {
    await this.staffAssignment(p, assignmentId);
    const groups = await this.load(assignmentId);
    const group = groups.find((g) => g.groupId === groupId);
    const changed = () =>
      new ConflictError("REVIEW_GROUP_CHANGED", `Review group '${groupId}' no longer exists as it was; here are the current groups.`, {
        groups,
      });
    if (!group) throw changed();
    const problems = await this.db.submission.findMany({
      where: { id: { in: group.submissionIds } },
      select: { problem: { select: { points: true } } },
    });
    checkScore(body.score, Math.min(...problems.map((s) => s.problem.points)));
    await this.db.$transaction(async (tx) => {
      // Row locks in id order: a concurrent grade of an overlapping group waits, then finds the overrides and stops.
      await tx.$queryRaw`SELECT id FROM "Submission" WHERE id = ANY(${group.submissionIds}::uuid[]) ORDER BY id FOR UPDATE`;
      if (await tx.scoreOverride.count({ where: { submissionId: { in: group.submissionIds }, clearedAt: null } })) throw changed();
      await tx.scoreOverride.createMany({
        data: group.submissionIds.map((submissionId) => ({
          submissionId,
          score: body.score,
          comment: body.comment ?? null,
          byId: p.userId,
          groupId,
        })),
      });
      for (const id of group.submissionIds)
        await audit(
          tx,
          p.userId,
          "grade.override",
          { type: "submission", id },
          { groupId, score: body.score, comment: body.comment ?? null },
        );
      await audit(
        tx,
        p.userId,
        "review.group.grade",
        { type: "assignment", id: assignmentId },
        {
          groupId,
          problem: group.problem,
          submissionIds: group.submissionIds,
          score: body.score,
        },
      );
    });
    await scoresMayHaveChanged(
      { db: this.db, queue: this.queue, log: this.log },
      assignmentId,
      group.students.map((s) => s.userId),
    );
    return { graded: group.size, groupId, problem: group.problem };
  }
}
