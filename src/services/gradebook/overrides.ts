import type { Db } from "../../db.ts";
import { ForbiddenError, NotFoundError, UnprocessableError } from "../../errors.ts";
import type { GradingQueue } from "../../grading/queue.ts";
import { isStaff, memberRole } from "../access.ts";
import { audit } from "../audit.ts";
import type { Principal } from "../auth.ts";
import { submissionView, viewInclude } from "../submission-view.ts";
import { scoresMayHaveChanged } from "./notify.ts";

type Logger = { warn(obj: object, msg: string): void };

/**
 * A submission that only its course's staff may act on: 404 to whoever may not see it (another course, a
 * classmate), 403 to its own student, who may see it but not grade it.
 */
export async function staffSubmission(db: Db, p: Principal, id: string) {
  const s = await db.submission.findUnique({ where: { id }, include: { assignment: true, problem: true } });
  if (!s) throw new NotFoundError("Submission", id);
  const role = await memberRole(db, p, s.assignment.courseId);
  if (!role || (!isStaff(role) && s.userId !== p.userId)) throw new NotFoundError("Submission", id);
  if (!isStaff(role)) throw new ForbiddenError("Only course staff may grade or regrade a submission.");
  return s;
}

/** An override's score must lie in [0, the points of the problem the submission answers]. */
export function checkScore(score: number, points: number): void {
  if (!(score >= 0 && score <= points))
    throw new UnprocessableError("SCORE_OUT_OF_RANGE", `The score must be between 0 and ${points} (the problem's points); got ${score}.`, {
      min: 0,
      max: points,
    });
}

/**
 * Manual grades. An override is a row beside the automatic grades (never an edit of one): the newest
 * override not cleared is the submission's score until it is cleared (DELETE, or a regrade asked to);
 * every one stays in the history. Each write and its audit row are one transaction.
 */
export class OverrideService {
  constructor(
    private readonly db: Db,
    private readonly queue: GradingQueue,
    private readonly log: Logger,
  ) {}

  private async view(id: string) {
    const s = await this.db.submission.findUniqueOrThrow({ where: { id }, include: viewInclude });
    return submissionView(s, true, new Date());
  }

  async set(p: Principal, id: string, body: { score: number; comment?: string | null }) {
    const s = await staffSubmission(this.db, p, id);
    checkScore(body.score, s.problem.points);
    await this.db.$transaction(async (tx) => {
      const o = await tx.scoreOverride.create({
        data: { submissionId: id, score: body.score, comment: body.comment ?? null, byId: p.userId },
      });
      await audit(tx, p.userId, "grade.override", { type: "submission", id }, { overrideId: o.id, score: o.score, comment: o.comment });
    });
    await scoresMayHaveChanged({ db: this.db, queue: this.queue, log: this.log }, s.assignmentId, [s.userId]);
    return this.view(id);
  }

  /** Clears the standing override (and any older one not cleared), so the automatic grade counts again. Idempotent. */
  async clear(p: Principal, id: string) {
    const s = await staffSubmission(this.db, p, id);
    const cleared = await this.db.$transaction(async (tx) => {
      const n = await tx.scoreOverride.updateMany({
        where: { submissionId: id, clearedAt: null },
        data: { clearedAt: new Date(), clearedById: p.userId },
      });
      if (n.count) await audit(tx, p.userId, "grade.override.clear", { type: "submission", id }, { cleared: n.count });
      return n.count;
    });
    if (cleared) await scoresMayHaveChanged({ db: this.db, queue: this.queue, log: this.log }, s.assignmentId, [s.userId]);
    return this.view(id);
  }

  /** Every automatic run and every override, oldest first, with who gave the overrides and who cleared them. */
  async history(p: Principal, id: string) {
    await staffSubmission(this.db, p, id);
    const [grades, overrides] = await Promise.all([
      this.db.grade.findMany({ where: { submissionId: id }, include: { problem: { include: { revision: true } } } }),
      this.db.scoreOverride.findMany({ where: { submissionId: id } }),
    ]);
    const people = new Set(overrides.flatMap((o) => [o.byId, o.clearedById]).filter((u): u is string => u !== null));
    const users = await this.db.user.findMany({ where: { id: { in: [...people] } }, select: { id: true, name: true } });
    const nameOf = (u: string | null) => (u ? (users.find((x) => x.id === u)?.name ?? null) : null);
    const entries = [
      ...grades.map((g) => ({
        type: "auto" as const,
        at: g.createdAt,
        run: g.run,
        status: g.status,
        score: g.score,
        rawScore: g.rawScore,
        maxScore: g.maxScore,
        needsReview: g.needsReview,
        problemRevision: g.problem.revision.revision,
        graderVersion: g.graderVersion,
        comment: g.comment,
      })),
      ...overrides.map((o) => ({
        type: "override" as const,
        at: o.createdAt,
        overrideId: o.id,
        score: o.score,
        comment: o.comment,
        byId: o.byId,
        by: nameOf(o.byId),
        groupId: o.groupId,
        clearedAt: o.clearedAt,
        clearedById: o.clearedById,
        clearedBy: nameOf(o.clearedById),
      })),
    ];
    entries.sort((x, y) => x.at.getTime() - y.at.getTime() || (x.type === y.type ? 0 : x.type === "auto" ? -1 : 1));
    return { submissionId: id, history: entries };
  }
}
