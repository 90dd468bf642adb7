import { Prisma, type Db } from "../../db.ts";
import { AppError, NotFoundError } from "../../errors.ts";
import type { GradingQueue } from "../../grading/queue.ts";
import { isStaff, memberRole, requireCourseRole, requireUser } from "../access.ts";
import { audit } from "../audit.ts";
import type { Principal } from "../auth.ts";
import { assignmentIncludes, assignmentView, checkSchedule } from "../courses.ts";
import type { ProblemSetService } from "../problem-sets.ts";
import { scoresMayHaveChanged } from "./notify.ts";
import { parseLateSteps, windowAt, type LateStep } from "./policy.ts";
import { assignmentRecords, type StudentRecord } from "./records.ts";
import { policyNow } from "./submit-rules.ts";

type Logger = { warn(obj: object, msg: string): void };

/** A change to an assignment's settings (PATCH): null clears an optional field. */
export interface AssignmentChange {
  title?: string;
  opensAt?: Date | null;
  dueAt?: Date | null;
  lateUntil?: Date | null;
  latePenaltyPerDay?: number;
  lateSteps?: LateStep[] | null;
  maxAttempts?: number | null;
  scorePolicy?: "best" | "last";
  timeLimitMinutes?: number | null;
  countPrecheckRejections?: boolean;
  countRunRejections?: boolean;
  lmsAssignmentId?: string | null;
}

/** The assignment page, the scores of record and the instructor's changes to an assignment's rules. */
export class AssignmentService {
  constructor(
    private readonly db: Db,
    private readonly queue: GradingQueue,
    private readonly problemSets: ProblemSetService,
    private readonly log: Logger,
  ) {}

  /** The assignment and the caller's role in its course; 404 for outsiders, as if it did not exist. */
  async access(p: Principal, assignmentId: string) {
    const a = await this.db.assignment.findUnique({ where: { id: assignmentId }, include: assignmentIncludes });
    const role = a ? await memberRole(this.db, p, a.courseId) : null;
    if (!a || !role) throw new NotFoundError("Assignment", assignmentId);
    return { a, role, staff: isStaff(role) };
  }

  /**
   * The assignment as the caller works on it: the pinned revision's problems (statements with their own numbers),
   * their effective dates and attempts, and on a timed assignment their exam deadline; a student's first view of
   * a timed assignment starts their clock. Students see it once it has opened.
   */
  async get(p: Principal, assignmentId: string) {
    const { a, staff } = await this.access(p, assignmentId);
    const now = new Date();
    if (!staff && a.opensAt && now < a.opensAt)
      throw new AppError(403, "ASSIGNMENT_NOT_OPEN", `This assignment opens at ${a.opensAt.toISOString()}.`, { opensAt: a.opensAt });
    const userId = p.userId;
    const mine = !staff && userId ? await policyNow(this.db, a, userId, now) : null;
    const policy = mine?.policy ?? null;
    const [revision, own] = await Promise.all([
      this.db.problemSetRevision.findUniqueOrThrow({
        where: { id: a.revisionId },
        include: { problems: { orderBy: { position: "asc" } } },
      }),
      mine && userId ? assignmentRecords(this.db, a.id, { userId }).then((r) => r[0]) : undefined,
    ]);
    const recordOf = new Map(own?.problems.map((r) => [r.problem, r]));
    const w = policy ? windowAt(policy, now) : null;
    return {
      ...assignmentView(a),
      description: revision.description,
      problems: this.problemSets.render(revision.problems, a.problemSet.slug, userId).map((problem) => {
        const r = recordOf.get(problem.slug);
        const max = policy?.maxAttempts ?? null;
        return {
          ...problem,
          score: r?.score ?? null,
          attemptsUsed: r?.attemptsUsed ?? null,
          attemptsLeft: r && max !== null ? Math.max(0, max - r.attemptsUsed) : null,
        };
      }),
      yours: {
        role: staff ? ("staff" as const) : ("student" as const),
        dueAt: policy ? policy.dueAt : a.dueAt,
        lateUntil: policy ? policy.lateUntil : a.lateUntil,
        maxAttempts: policy ? policy.maxAttempts : a.maxAttempts,
        examStartedAt: mine?.examStartedAt ?? null,
        examEndsAt: policy?.examEndsAt ?? null,
        extension: mine?.extension ?? null,
        // Staff are bound by no window; a student's says whether a submission now is taken and what it keeps.
        window: w
          ? w.open
            ? { open: true, lateFactor: w.lateFactor }
            : { open: false, reason: w.reason, at: w.at }
          : { open: true, lateFactor: 1 },
      },
    };
  }

  /** Scores of record: staff see every student, a student their own row. */
  async grades(p: Principal, assignmentId: string) {
    const { a, staff } = await this.access(p, assignmentId);
    const students = await assignmentRecords(this.db, a.id, staff ? {} : { userId: requireUser(p) });
    return { assignmentId: a.id, scorePolicy: a.scorePolicy, revision: a.revision.revision, students: students.map(gradeRow) };
  }

  /** An instructor's change of title, dates and rules; scores of record are recomputed from them, nothing is rewritten. */
  async update(p: Principal, assignmentId: string, change: AssignmentChange) {
    const { a } = await this.access(p, assignmentId);
    await requireCourseRole(this.db, p, a.courseId, ["instructor"]);
    const merged = {
      opensAt: change.opensAt === undefined ? a.opensAt : change.opensAt,
      dueAt: change.dueAt === undefined ? a.dueAt : change.dueAt,
      lateUntil: change.lateUntil === undefined ? a.lateUntil : change.lateUntil,
      latePenaltyPerDay: change.latePenaltyPerDay ?? a.latePenaltyPerDay,
      lateSteps: change.lateSteps === undefined ? parseLateSteps(a.lateSteps) : change.lateSteps,
    };
    checkSchedule({
      ...merged,
      opensAt: merged.opensAt ?? undefined,
      dueAt: merged.dueAt ?? undefined,
      lateUntil: merged.lateUntil ?? undefined,
      lateSteps: merged.lateSteps ?? undefined,
    });
    const { lateSteps, ...rest } = change;
    const data: Prisma.AssignmentUpdateInput = {
      ...rest,
      ...(lateSteps === undefined ? {} : { lateSteps: lateSteps === null ? Prisma.DbNull : lateSteps }),
    };
    const updated = await this.db.$transaction(async (tx) => {
      const u = await tx.assignment.update({ where: { id: a.id }, data, include: assignmentIncludes });
      await audit(
        tx,
        p.userId,
        "assignment.update",
        { type: "assignment", id: a.id },
        JSON.parse(JSON.stringify(change)) as Prisma.InputJsonValue,
      );
      return u;
    });
    const students = await this.db.enrollment.findMany({ where: { courseId: a.courseId, role: "student" }, select: { userId: true } });
    await scoresMayHaveChanged(
      { db: this.db, queue: this.queue, log: this.log },
      a.id,
      students.map((s) => s.userId),
    );
    return assignmentView(updated);
  }
}

/** A student's record in the API's shape: the override names who gave it as `by`. */
function gradeRow(s: StudentRecord) {
  return {
    ...s,
    problems: s.problems.map(({ override, ...r }) => ({
      ...r,
      override: override && { score: override.score, comment: override.comment, by: override.byId, at: override.at },
    })),
  };
}
