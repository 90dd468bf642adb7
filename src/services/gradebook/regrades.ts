import type { Db, Prisma } from "../../db.ts";
import { NotFoundError, UnprocessableError } from "../../errors.ts";
import type { GradingQueue } from "../../grading/queue.ts";
import { regradeKind } from "../../jobs/regrade.ts";
import { enqueue } from "../../jobs/registry.ts";
import { requireStaff } from "../access.ts";
import { audit } from "../audit.ts";
import type { Principal } from "../auth.ts";
import { staffSubmission } from "./overrides.ts";
import { createItems, progress, scopeWhere, snapshot, SKIPPED_RUN, tryFinish, type Change, type RegradeDeps } from "./regrade-run.ts";

type Logger = { warn(obj: object, msg: string): void };

interface Scope {
  problemSlug?: string;
  userId?: string;
  submissionId?: string;
}

/**
 * Regrades and pinned revisions. A regrade supersedes each submission of its scope (a new run against the
 * assignment's pinned revision; the old grades stay), and its report compares the students' scores of
 * record before and after. Batches run as the durable `regrade` job (jobs/regrade.ts); a one-submission
 * regrade supersedes at once, so the API can answer with the new run.
 */
export class RegradeService {
  private readonly deps: RegradeDeps;

  constructor(db: Db, queue: GradingQueue, log: Logger) {
    this.deps = { db, queue, log };
  }

  private get db() {
    return this.deps.db;
  }

  private async staffAssignment(p: Principal, assignmentId: string) {
    const a = await this.db.assignment.findUnique({ where: { id: assignmentId }, include: { revision: true } });
    if (!a) throw new NotFoundError("Assignment", assignmentId);
    await requireStaff(this.db, p, a.courseId);
    return a;
  }

  /** Moves the assignment to a revision of its set (default: the latest), audited; optionally regrades everything against it. */
  async moveRevision(p: Principal, assignmentId: string, body: { revision?: number; regrade?: boolean; clearOverrides?: boolean }) {
    const a = await this.staffAssignment(p, assignmentId);
    const revisions = await this.db.problemSetRevision.findMany({
      where: { problemSetId: a.problemSetId },
      orderBy: { revision: "asc" },
      select: { id: true, revision: true },
    });
    const target = body.revision === undefined ? revisions.at(-1) : revisions.find((r) => r.revision === body.revision);
    if (!target) {
      const existing = revisions.map((r) => r.revision);
      throw new UnprocessableError("UNKNOWN_REVISION", `This set has no revision ${body.revision}; it has ${existing.join(", ")}.`, {
        revisions: existing,
      });
    }
    await this.db.$transaction(async (tx) => {
      await tx.assignment.update({ where: { id: a.id }, data: { revisionId: target.id } });
      await audit(
        tx,
        p.userId,
        "assignment.revision",
        { type: "assignment", id: a.id },
        { from: a.revision.revision, to: target.revision },
      );
    });
    const regradeId = body.regrade ? (await this.create(p, a.id, {}, body.clearOverrides ?? false)).id : undefined;
    return { assignmentId: a.id, revision: target.revision, ...(regradeId ? { regradeId } : {}) };
  }

  /** A regrade of a problem, a student or the whole assignment: a report, at once done when there is nothing to regrade. */
  async start(p: Principal, assignmentId: string, body: { problem?: string; userId?: string; clearOverrides?: boolean }) {
    const a = await this.staffAssignment(p, assignmentId);
    if (body.problem) {
      const known = await this.db.problem.count({ where: { revisionId: a.revisionId, slug: body.problem } });
      const submitted = await this.db.submission.count({ where: { assignmentId, problemSlug: body.problem } });
      if (!known && !submitted) {
        const slugs = (await this.db.problem.findMany({ where: { revisionId: a.revisionId }, orderBy: { position: "asc" } })).map(
          (x) => x.slug,
        );
        throw new UnprocessableError("UNKNOWN_PROBLEM", `The assignment has no problem '${body.problem}'; it has ${slugs.join(", ")}.`, {
          problems: slugs,
        });
      }
    }
    if (
      body.userId &&
      !(await this.db.enrollment.findUnique({ where: { courseId_userId: { courseId: a.courseId, userId: body.userId } } }))
    )
      throw new UnprocessableError("NOT_ENROLLED", `User '${body.userId}' is not in this course.`);
    const r = await this.create(p, assignmentId, { problemSlug: body.problem, userId: body.userId }, body.clearOverrides ?? false);
    return { id: r.id, done: r.status === "done" };
  }

  /** One submission, against the assignment's pinned revision; superseded at once so the answer carries the new run. */
  async regradeSubmission(p: Principal, submissionId: string) {
    const s = await staffSubmission(this.db, p, submissionId);
    const pinned = await this.db.problem.findUnique({
      where: { revisionId_slug: { revisionId: s.assignment.revisionId, slug: s.problemSlug } },
    });
    if (!pinned)
      throw new UnprocessableError(
        "PROBLEM_NOT_IN_REVISION",
        `The assignment's revision has no problem '${s.problemSlug}': move the assignment to a revision that has it to regrade this submission.`,
      );
    const r = await this.create(p, s.assignmentId, { submissionId }, false, false);
    await createItems(this.deps, r.id, 1);
    const item = await this.db.regradeItem.findUniqueOrThrow({ where: { regradeId_submissionId: { regradeId: r.id, submissionId } } });
    const now = await this.db.submission.findUniqueOrThrow({ where: { id: submissionId }, select: { status: true } });
    await this.wake(r.id); // the job writes the report once the run is graded
    return { id: submissionId, status: now.status, run: item.run, regradeId: r.id };
  }

  /**
   * The Regrade row, its `before` snapshot (the scope's students' scores of record) and, with clearOverrides,
   * the scope's current overrides cleared: one transaction, audited. Nothing in scope: done at once, empty report.
   */
  private async create(p: Principal, assignmentId: string, scope: Scope, clearOverrides: boolean, wake = true) {
    const users = await this.db.submission.findMany({
      where: scopeWhere({ assignmentId, problemSlug: null, userId: null, submissionId: null, ...scope, createdAt: new Date() }),
      distinct: ["userId"],
      select: { userId: true },
    });
    const before = await snapshot(
      this.db,
      assignmentId,
      users.map((u) => u.userId),
    );
    const r = await this.db.$transaction(async (tx) => {
      const row = await tx.regrade.create({
        data: { assignmentId, ...scope, clearOverrides, requestedById: p.userId, before: before as Prisma.InputJsonValue },
      });
      const total = await tx.submission.count({ where: scopeWhere(row) });
      const cleared = clearOverrides
        ? (
            await tx.scoreOverride.updateMany({
              where: { clearedAt: null, submission: scopeWhere(row) },
              data: { clearedAt: new Date(), clearedById: p.userId },
            })
          ).count
        : 0;
      const empty = total === 0;
      await audit(
        tx,
        p.userId,
        "regrade.start",
        { type: "regrade", id: row.id },
        { assignmentId, ...scope, clearOverrides, total, cleared },
      );
      return tx.regrade.update({
        where: { id: row.id },
        data: { total, ...(empty ? { status: "done", changes: [], finishedAt: new Date() } : {}) },
      });
    });
    if (r.status !== "done" && wake) await this.wake(r.id);
    return r;
  }

  /** Redis away: the row is committed, and the outbox enqueues its job once it is older than the grace period. */
  private async wake(regradeId: string) {
    await enqueue(this.deps.queue, regradeKind, { regradeId }).catch((err: unknown) =>
      this.deps.log.warn({ err, regradeId }, "enqueue failed; the outbox will pick the regrade up"),
    );
  }

  /** Progress while it runs; once every run has finished, the report (written here if the job has not yet). */
  async report(p: Principal, regradeId: string) {
    const found = await this.db.regrade.findUnique({ where: { id: regradeId }, include: { assignment: true } });
    if (!found) throw new NotFoundError("Regrade", regradeId);
    await requireStaff(this.db, p, found.assignment.courseId);
    await tryFinish(this.deps, regradeId);
    const r = await this.db.regrade.findUniqueOrThrow({ where: { id: regradeId } });
    const prog = await progress(this.db, regradeId);
    const skipped = await this.db.regradeItem.findMany({
      where: { regradeId, run: SKIPPED_RUN },
      include: { submission: { select: { problemSlug: true } } },
    });
    return {
      id: r.id,
      assignmentId: r.assignmentId,
      scope: { problem: r.problemSlug, userId: r.userId, submissionId: r.submissionId, clearOverrides: r.clearOverrides },
      status: r.status,
      total: r.total,
      done: r.status === "done" ? r.total : prog.done,
      failed: prog.failed,
      skipped: skipped.map((i) => ({
        submissionId: i.submissionId,
        problem: i.submission.problemSlug,
        reason: "The pinned revision has no problem of this slug.",
      })),
      startedAt: r.createdAt,
      finishedAt: r.finishedAt,
      changes: r.status === "done" ? ((r.changes ?? []) as unknown as Change[]) : [],
    };
  }
}
