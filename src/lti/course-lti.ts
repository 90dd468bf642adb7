import type { Db, Prisma } from "../db.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import type { GradingQueue } from "../grading/queue.ts";
import { asc, desc, keysetArgs, toPage, type Page, type PageArgs } from "../lib/keyset.ts";
import { requireCourseRole, requireStaff } from "../services/access.ts";
import { audit } from "../services/audit.ts";
import type { Principal } from "../services/auth.ts";
import { requestRosterSync } from "./nrps.ts";
import { enqueuePassback } from "./passback.ts";

/** Keyset orders (src/lib/keyset.ts): the roster by name then user id; passbacks newest first. */
const ROSTER_ORDER = [asc("user.name"), asc("userId")];
const PASSBACK_ORDER = [desc("updatedAt", "date"), desc("id")];

/** A course's LTI side as its staff see it: the roster (with where each enrolment came from), roster sync, passbacks. */
export class CourseLtiService {
  constructor(
    private readonly db: Db,
    private readonly queue: GradingQueue,
  ) {}

  /** Staff: one roster sync per linked context with a membership service. */
  async syncRoster(p: Principal, courseId: string): Promise<{ contexts: number }> {
    await requireStaff(this.db, p, courseId);
    const contexts = await this.db.ltiContext.findMany({
      where: { courseId, membershipsUrl: { not: null }, platform: { disabledAt: null } },
      select: { id: true },
    });
    for (const c of contexts) await requestRosterSync({ db: this.db, queue: this.queue }, c.id);
    return { contexts: contexts.length };
  }

  /** Staff and admins: the roster by name, then user id (keyset pagination). */
  async enrollments(p: Principal, courseId: string, page: PageArgs): Promise<Page<EnrollmentView>> {
    await requireStaff(this.db, p, courseId);
    const k = keysetArgs<Prisma.EnrollmentWhereInput, Prisma.EnrollmentOrderByWithRelationInput>(ROSTER_ORDER, page);
    const rows = await this.db.enrollment.findMany({
      where: { AND: [{ courseId }, k.where] },
      orderBy: k.orderBy,
      take: k.take,
      select: { userId: true, role: true, source: true, user: { select: { name: true, email: true } } },
    });
    return toPage(rows, ROSTER_ORDER, page, (r) => ({
      userId: r.userId,
      name: r.user.name,
      email: r.user.email,
      role: r.role,
      source: r.source,
    }));
  }

  /** Staff: the course's score passbacks, newest first, with the LMS's last answer (dead letters: `status=dead`). */
  async passbacks(p: Principal, courseId: string, status: "pending" | "sent" | "dead" | undefined, page: PageArgs) {
    await requireStaff(this.db, p, courseId);
    const k = keysetArgs<Prisma.ScorePassbackWhereInput, Prisma.ScorePassbackOrderByWithRelationInput>(PASSBACK_ORDER, page);
    const rows = await this.db.scorePassback.findMany({
      where: { AND: [{ context: { courseId }, ...(status ? { status } : {}) }, k.where] },
      orderBy: k.orderBy,
      take: k.take,
      include: {
        assignment: { select: { title: true } },
        user: { select: { name: true, email: true } },
        context: { select: { contextId: true, title: true, platform: { select: { issuer: true } } } },
      },
    });
    return toPage(rows, PASSBACK_ORDER, page, (r) => ({
      id: r.id,
      assignmentId: r.assignmentId,
      assignmentTitle: r.assignment.title,
      userId: r.userId,
      name: r.user.name,
      email: r.user.email,
      lms: { issuer: r.context.platform.issuer, contextId: r.context.contextId, title: r.context.title },
      scoreGiven: r.scoreGiven,
      scoreMaximum: r.scoreMaximum,
      comment: r.comment,
      status: r.status,
      attempts: r.attempts,
      lastStatus: r.lastStatus,
      lastResponse: r.lastResponse,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
      sentAt: r.sentAt,
    }));
  }

  /**
   * Instructor: a dead letter goes back to pending with its attempts reset, and a delivery is enqueued. Safe to
   * send: a dead row is always its (context, assignment, student)'s latest score (a newer one revives the row).
   */
  async retryPassback(p: Principal, courseId: string, id: string): Promise<{ id: string; status: "pending" }> {
    const actor = p.userId;
    await requireCourseRole(this.db, p, courseId, ["instructor"]);
    const row = await this.db.scorePassback.findFirst({ where: { id, context: { courseId } }, select: { id: true, status: true } });
    if (!row) throw new NotFoundError("Passback", id);
    const retried = await this.db.$transaction(async (tx) => {
      const { count } = await tx.scorePassback.updateMany({ where: { id, status: "dead" }, data: { status: "pending", attempts: 0 } });
      if (count) await audit(tx, actor, "lti.passback.retry", { type: "score_passback", id });
      return count === 1;
    });
    if (!retried) throw new ConflictError("NOT_DEAD", `This passback is ${row.status}, not dead: only a dead letter can be retried.`);
    await enqueuePassback(this.queue, id);
    return { id, status: "pending" };
  }
}

export interface EnrollmentView {
  userId: string;
  name: string;
  email: string;
  role: "student" | "ta" | "instructor";
  source: "api" | "lti" | "roster";
}
