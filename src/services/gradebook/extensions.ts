import type { Db, Prisma } from "../../db.ts";
import { NotFoundError, UnprocessableError } from "../../errors.ts";
import { asc, keysetArgs, toPage, type PageArgs } from "../../lib/keyset.ts";
import type { GradingQueue } from "../../grading/queue.ts";
import { requireStaff } from "../access.ts";
import { audit } from "../audit.ts";
import type { Principal } from "../auth.ts";
import { scoresMayHaveChanged } from "./notify.ts";

type Logger = { warn(obj: object, msg: string): void };

export interface ExtensionInput {
  dueAt?: Date;
  lateUntil?: Date;
  extraAttempts?: number;
  extraMinutes?: number;
}

type ExtensionRow = NonNullable<Awaited<ReturnType<Db["extension"]["findFirst"]>>>;

const view = (e: ExtensionRow & { user: { name: string; email: string } }) => ({
  assignmentId: e.assignmentId,
  userId: e.userId,
  name: e.user.name,
  email: e.user.email,
  dueAt: e.dueAt,
  lateUntil: e.lateUntil,
  extraAttempts: e.extraAttempts,
  extraMinutes: e.extraMinutes,
  grantedById: e.grantedById,
  updatedAt: e.updatedAt,
});

/** By student name and email, the user id breaking ties (one extension per student): src/lib/keyset.ts. */
const EXTENSION_ORDER = [asc("user.name"), asc("user.email"), asc("userId")];
const withUser = { user: { select: { name: true, email: true } } } as const;

/**
 * Per-student exceptions to an assignment: later dates, extra attempts, extra exam minutes. Staff of the course
 * grant them to its students; a PUT replaces the student's extension whole. Scores of record follow at once, since
 * each submission's late factor is recomputed from the student's policy as it is now.
 */
export class ExtensionService {
  constructor(
    private readonly db: Db,
    private readonly queue: GradingQueue,
    private readonly log: Logger,
  ) {}

  private async assignment(p: Principal, assignmentId: string) {
    const a = await this.db.assignment.findUnique({ where: { id: assignmentId } });
    if (!a) throw new NotFoundError("Assignment", assignmentId);
    await requireStaff(this.db, p, a.courseId);
    return a;
  }

  private notify(assignmentId: string, userId: string) {
    return scoresMayHaveChanged({ db: this.db, queue: this.queue, log: this.log }, assignmentId, [userId]);
  }

  async list(p: Principal, assignmentId: string, page: PageArgs) {
    const a = await this.assignment(p, assignmentId);
    const k = keysetArgs<Prisma.ExtensionWhereInput, Prisma.ExtensionOrderByWithRelationInput>(EXTENSION_ORDER, page);
    const rows = await this.db.extension.findMany({
      where: { AND: [{ assignmentId: a.id }, k.where] },
      include: withUser,
      orderBy: k.orderBy,
      take: k.take,
    });
    return toPage(rows, EXTENSION_ORDER, page, view);
  }

  async put(p: Principal, assignmentId: string, userId: string, input: ExtensionInput) {
    const a = await this.assignment(p, assignmentId);
    const enrolment = await this.db.enrollment.findUnique({ where: { courseId_userId: { courseId: a.courseId, userId } } });
    if (enrolment?.role !== "student")
      throw new UnprocessableError(
        "NOT_A_STUDENT",
        `User '${userId}' is not enrolled as a student of this assignment's course; extensions are for its students.`,
        { field: "userId", role: enrolment?.role ?? null },
      );
    const errors: { field: string; message: string }[] = [];
    if (Object.values(input).every((v) => v === undefined))
      errors.push({ field: "body", message: "give at least one of dueAt, lateUntil, extraAttempts, extraMinutes" });
    const dueAt = input.dueAt ?? a.dueAt;
    if (input.dueAt && a.opensAt && input.dueAt <= a.opensAt)
      errors.push({ field: "dueAt", message: "must be after the assignment's opensAt" });
    if (input.lateUntil && !dueAt) errors.push({ field: "lateUntil", message: "needs a due date (the assignment's or the extension's)" });
    if (input.lateUntil && dueAt && input.lateUntil < dueAt)
      errors.push({ field: "lateUntil", message: "must not be before the due date" });
    if (errors.length) throw new UnprocessableError("INVALID_EXTENSION", "The extension's dates do not fit together.", errors);

    const data = {
      dueAt: input.dueAt ?? null,
      lateUntil: input.lateUntil ?? null,
      extraAttempts: input.extraAttempts ?? 0,
      extraMinutes: input.extraMinutes ?? 0,
      grantedById: p.userId,
    };
    const e = await this.db.$transaction(async (tx) => {
      const row = await tx.extension.upsert({
        where: { assignmentId_userId: { assignmentId: a.id, userId } },
        create: { assignmentId: a.id, userId, ...data },
        update: data,
        include: withUser,
      });
      await audit(
        tx,
        p.userId,
        "extension.put",
        { type: "assignment", id: a.id },
        {
          userId,
          dueAt: data.dueAt?.toISOString() ?? null,
          lateUntil: data.lateUntil?.toISOString() ?? null,
          extraAttempts: data.extraAttempts,
          extraMinutes: data.extraMinutes,
        },
      );
      return row;
    });
    await this.notify(a.id, userId);
    return view(e);
  }

  async remove(p: Principal, assignmentId: string, userId: string) {
    const a = await this.assignment(p, assignmentId);
    const removed = await this.db.$transaction(async (tx) => {
      const { count } = await tx.extension.deleteMany({ where: { assignmentId: a.id, userId } });
      if (count) await audit(tx, p.userId, "extension.delete", { type: "assignment", id: a.id }, { userId });
      return count;
    });
    if (!removed) throw new NotFoundError(`Extension of user '${userId}' on assignment`, assignmentId);
    await this.notify(a.id, userId);
  }
}
