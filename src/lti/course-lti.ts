import type { Db, Prisma } from "../db.ts";
import { BadRequestError, ConflictError, NotFoundError } from "../errors.ts";
import type { GradingQueue } from "../grading/queue.ts";
import { requireCourseRole, requireStaff } from "../services/access.ts";
import { audit } from "../services/audit.ts";
import type { Principal } from "../services/auth.ts";
import { requestRosterSync } from "./nrps.ts";
import { enqueuePassback } from "./passback.ts";

/** A course's LTI side as its staff see it: the roster (with where each enrolment came from), roster sync, passbacks. */

export interface Page<T> {
  items: T[];
  next: string | null;
}

/** Keyset cursors are opaque to clients: base64url JSON of the last row's sort key. */
const encode = (key: unknown[]) => Buffer.from(JSON.stringify(key)).toString("base64url");
function decode(cursor: string | undefined, arity: number): unknown[] | null {
  if (!cursor) return null;
  try {
    const key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (Array.isArray(key) && key.length === arity && key.every((k) => typeof k === "string")) return key;
  } catch {
    /* answered below */
  }
  throw new BadRequestError("BAD_CURSOR", "The cursor is not one this list gave out.");
}

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
  async enrollments(p: Principal, courseId: string, limit: number, cursor?: string): Promise<Page<EnrollmentView>> {
    await requireStaff(this.db, p, courseId);
    const after = decode(cursor, 2) as [string, string] | null;
    const rows = await this.db.enrollment.findMany({
      where: {
        courseId,
        ...(after ? { OR: [{ user: { name: { gt: after[0] } } }, { user: { name: after[0] }, userId: { gt: after[1] } }] } : {}),
      },
      orderBy: [{ user: { name: "asc" } }, { userId: "asc" }],
      take: limit + 1,
      select: { userId: true, role: true, source: true, user: { select: { name: true, email: true } } },
    });
    const items = rows
      .slice(0, limit)
      .map((r) => ({ userId: r.userId, name: r.user.name, email: r.user.email, role: r.role, source: r.source }));
    const last = items.at(-1);
    return { items, next: rows.length > limit && last ? encode([last.name, last.userId]) : null };
  }

  /** Staff: the course's score passbacks, newest first, with the LMS's last answer (dead letters: `status=dead`). */
  async passbacks(p: Principal, courseId: string, status: "pending" | "sent" | "dead" | undefined, limit: number, cursor?: string) {
    await requireStaff(this.db, p, courseId);
    const after = decode(cursor, 2) as [string, string] | null;
    const where: Prisma.ScorePassbackWhereInput = {
      context: { courseId },
      ...(status ? { status } : {}),
      ...(after ? { OR: [{ updatedAt: { lt: new Date(after[0]) } }, { updatedAt: new Date(after[0]), id: { lt: after[1] } }] } : {}),
    };
    const rows = await this.db.scorePassback.findMany({
      where,
      orderBy: [{ updatedAt: "desc" }, { id: "desc" }],
      take: limit + 1,
      include: {
        assignment: { select: { title: true } },
        user: { select: { name: true, email: true } },
        context: { select: { contextId: true, title: true, platform: { select: { issuer: true } } } },
      },
    });
    const items = rows.slice(0, limit).map((r) => ({
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
    const last = rows.length > limit ? items.at(-1) : undefined;
    return { items, next: last ? encode([last.updatedAt.toISOString(), last.id]) : null };
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
