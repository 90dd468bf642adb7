import type { Db, Prisma } from "../db.ts";
import { ConflictError, ForbiddenError, NotFoundError, UnprocessableError } from "../errors.ts";
import { isUniqueViolation } from "../lib/prisma-errors.ts";
import { asc, keysetArgs, toPage, type PageArgs } from "../lib/keyset.ts";
import { courseRole, readableSets, requireAdmin, requireCourseRole, type CourseRole } from "./access.ts";
import { audit } from "./audit.ts";
import type { Principal } from "./auth.ts";
import { parseLateSteps, type LateStep } from "./gradebook/policy.ts";

export interface AssignmentInput {
  problemSet: string;
  title?: string;
  opensAt?: Date;
  dueAt?: Date;
  lateUntil?: Date;
  latePenaltyPerDay?: number;
  maxAttempts?: number;
  scorePolicy?: "best" | "last";
  lateSteps?: LateStep[];
  timeLimitMinutes?: number;
  countPrecheckRejections?: boolean;
  countRunRejections?: boolean;
  lmsAssignmentId?: string;
}

type AssignmentRow = Awaited<ReturnType<Db["assignment"]["findFirstOrThrow"]>> & {
  problemSet: { slug: string };
  revision: { revision: number };
};

/** What assignmentView needs joined to the row. */
export const assignmentIncludes = { problemSet: { select: { slug: true } }, revision: { select: { revision: true } } } as const;

export const assignmentView = (a: AssignmentRow) => ({
  id: a.id,
  courseId: a.courseId,
  problemSet: a.problemSet.slug,
  /** The pinned revision of the set the assignment serves and grades against. */
  revision: a.revision.revision,
  title: a.title,
  opensAt: a.opensAt,
  dueAt: a.dueAt,
  lateUntil: a.lateUntil,
  latePenaltyPerDay: a.latePenaltyPerDay,
  maxAttempts: a.maxAttempts,
  scorePolicy: a.scorePolicy,
  lateSteps: parseLateSteps(a.lateSteps),
  timeLimitMinutes: a.timeLimitMinutes,
  countPrecheckRejections: a.countPrecheckRejections,
  countRunRejections: a.countRunRejections,
  lmsAssignmentId: a.lmsAssignmentId,
  createdAt: a.createdAt,
});

/** Lists page by keyset (src/lib/keyset.ts): oldest first, id breaking ties. */
const BY_CREATION = [asc("createdAt", "date"), asc("id")];

export class CourseService {
  constructor(private readonly db: Db) {}

  async create(p: Principal, input: { slug: string; title: string }) {
    requireAdmin(p);
    try {
      return await this.db.$transaction(async (tx) => {
        const course = await tx.course.create({ data: input, select: { id: true, slug: true, title: true } });
        await audit(tx, p.userId, "course.create", { type: "course", id: course.id });
        return course;
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new ConflictError("COURSE_SLUG_TAKEN", `A course with slug '${input.slug}' exists.`);
      throw e;
    }
  }

  async enroll(p: Principal, courseId: string, userId: string, role: CourseRole) {
    await requireCourseRole(this.db, p, courseId, ["instructor"]);
    const user = await this.db.user.findUnique({ where: { id: userId }, select: { id: true } });
    if (!user) throw new NotFoundError("User", userId);
    if (p.userId === userId && p.role !== "admin" && role !== "instructor")
      throw new ForbiddenError("Instructors cannot demote themselves; ask another instructor or an admin.");
    return this.db.$transaction(async (tx) => {
      const e = await tx.enrollment.upsert({
        where: { courseId_userId: { courseId, userId } },
        // Set by hand: from now on an LTI launch or a roster sync leaves this role alone (see src/lti/provision.ts).
        create: { courseId, userId, role, source: "api" },
        update: { role, source: "api" },
      });
      await audit(tx, p.userId, "enrollment.put", { type: "course", id: courseId }, { userId, role });
      return { courseId: e.courseId, userId: e.userId, role: e.role };
    });
  }

  async createAssignment(p: Principal, courseId: string, input: AssignmentInput) {
    await requireCourseRole(this.db, p, courseId, ["instructor"]);
    // A set the instructor may not read answers exactly like one that does not exist: slugs are not guessable handles.
    const set = await this.db.problemSet.findFirst({
      where: { AND: [{ slug: input.problemSet }, await readableSets(this.db, p)] },
      include: { revisions: { orderBy: { revision: "desc" }, take: 1 } },
    });
    if (!set || set.revisions.length === 0)
      throw new UnprocessableError("UNKNOWN_PROBLEM_SET", `No problem set '${input.problemSet}'; GET /v1/problem-sets lists them.`, {
        field: "problemSet",
      });
    checkSchedule(input);
    return this.db.$transaction(async (tx) => {
      const a = await tx.assignment.create({
        data: {
          courseId,
          problemSetId: set.id,
          revisionId: set.revisions[0]!.id,
          title: input.title ?? set.revisions[0]!.title,
          opensAt: input.opensAt,
          dueAt: input.dueAt,
          lateUntil: input.lateUntil,
          latePenaltyPerDay: input.latePenaltyPerDay ?? 0,
          maxAttempts: input.maxAttempts,
          scorePolicy: input.scorePolicy ?? "best",
          lateSteps: input.lateSteps,
          timeLimitMinutes: input.timeLimitMinutes,
          countPrecheckRejections: input.countPrecheckRejections,
          countRunRejections: input.countRunRejections,
          lmsAssignmentId: input.lmsAssignmentId,
          createdById: p.userId,
        },
        include: assignmentIncludes,
      });
      await audit(tx, p.userId, "assignment.create", { type: "assignment", id: a.id }, { courseId });
      return assignmentView(a);
    });
  }

  async listAssignments(p: Principal, courseId: string, page: PageArgs) {
    await courseRole(this.db, p, courseId);
    const k = keysetArgs<Prisma.AssignmentWhereInput, Prisma.AssignmentOrderByWithRelationInput>(BY_CREATION, page);
    const rows = await this.db.assignment.findMany({
      where: { AND: [{ courseId }, k.where] },
      orderBy: k.orderBy,
      take: k.take,
      include: assignmentIncludes,
    });
    return toPage(rows, BY_CREATION, page, assignmentView);
  }
}

/** Dates and late rules that fit together (on create, and on a change with the stored values filled in). */
export function checkSchedule(a: Pick<AssignmentInput, "opensAt" | "dueAt" | "lateUntil" | "latePenaltyPerDay" | "lateSteps">) {
  const errors: { field: string; message: string }[] = [];
  if (a.lateSteps && (a.latePenaltyPerDay ?? 0) > 0)
    errors.push({ field: "lateSteps", message: "give either lateSteps or a latePenaltyPerDay above 0, not both" });
  if (a.opensAt && a.dueAt && a.opensAt >= a.dueAt) errors.push({ field: "dueAt", message: "must be after opensAt" });
  if (a.lateUntil && !a.dueAt) errors.push({ field: "lateUntil", message: "needs a dueAt" });
  if (a.lateUntil && a.dueAt && a.lateUntil < a.dueAt) errors.push({ field: "lateUntil", message: "must not be before dueAt" });
  if (errors.length) throw new UnprocessableError("INVALID_SCHEDULE", "The assignment's dates and late rules do not fit together.", errors);
}
