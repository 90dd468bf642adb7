import type { Db, Prisma } from "../db.ts";
import { ForbiddenError, NotFoundError } from "../errors.ts";
import type { Principal } from "./auth.ts";

export type CourseRole = "student" | "ta" | "instructor";
const STAFF: CourseRole[] = ["ta", "instructor"];

export function requireAdmin(p: Principal): void {
  if (p.role !== "admin") throw new ForbiddenError("Only an admin may do this.");
}

/** A real user behind the call: the bootstrap ADMIN_TOKEN is nobody and cannot act as one. */
export function requireUser(p: Principal): string {
  if (!p.userId) throw new ForbiddenError("The bootstrap ADMIN_TOKEN acts as no user; create a user and use its token.");
  return p.userId;
}

/**
 * The caller's role in the course ("instructor" for admins), or null when they are not in it or it does not exist.
 * Only "no such row" becomes null: a database failure propagates and the error handler answers 503, never 404.
 */
export async function memberRole(db: Db, p: Principal, courseId: string): Promise<CourseRole | null> {
  // A course-scoped token (LTI session, integration token) knows no other course, whoever its user is.
  if (p.courseId && p.courseId !== courseId) return null;
  if (p.role === "admin") return (await db.course.findUnique({ where: { id: courseId }, select: { id: true } })) ? "instructor" : null;
  if (!p.userId) return null;
  const enrollment = await db.enrollment.findUnique({
    where: { courseId_userId: { courseId, userId: p.userId } },
    select: { role: true },
  });
  return enrollment?.role ?? null;
}

/** memberRole's rule on an enrolment already read (the submit path reads it with the assignment, in one query). */
export function roleIn(p: Principal, courseId: string, enrolled: CourseRole | null): CourseRole | null {
  if (p.courseId && p.courseId !== courseId) return null;
  if (p.role === "admin") return "instructor"; // the course exists: the assignment row that named it was just read
  return p.userId ? enrolled : null;
}

/** The caller's role in the course; 404 when they are not in it, so courses stay unknowable. */
export async function courseRole(db: Db, p: Principal, courseId: string): Promise<CourseRole> {
  const role = await memberRole(db, p, courseId);
  if (!role) throw new NotFoundError("Course", courseId);
  return role;
}

export const isStaff = (role: CourseRole): boolean => STAFF.includes(role);

export async function requireCourseRole(db: Db, p: Principal, courseId: string, allowed: readonly CourseRole[]): Promise<CourseRole> {
  const role = await courseRole(db, p, courseId);
  if (!allowed.includes(role)) throw new ForbiddenError(`This needs the course role ${allowed.join(" or ")}; you are ${role}.`);
  return role;
}

export const requireStaff = (db: Db, p: Principal, courseId: string) => requireCourseRole(db, p, courseId, STAFF);

/**
 * The problem sets a caller may read, as a filter. Admins: all. Owners: their sets. Course staff (ta or instructor
 * anywhere): the deployment's sets and every set assigned in a course they staff. Students: a set assigned in one of
 * their courses once that assignment has opened. Everything else answers 404, as if it did not exist.
 */
export async function readableSets(db: Db, p: Principal, now = new Date()): Promise<Prisma.ProblemSetWhereInput> {
  if (p.role === "admin") return {};
  const userId = p.userId;
  if (!userId) return { id: { in: [] } };
  const staffSomewhere = (await db.enrollment.count({ where: { userId, role: { in: STAFF } } })) > 0;
  const inCourseAs = (role: Prisma.EnumCourseRoleFilter) => ({ course: { enrollments: { some: { userId, role } } } });
  return {
    OR: [
      { owners: { some: { userId } } },
      ...(staffSomewhere ? [{ deployment: true }, { assignments: { some: inCourseAs({ in: STAFF }) } }] : []),
      { assignments: { some: { ...inCourseAs({ equals: "student" }), OR: [{ opensAt: null }, { opensAt: { lte: now } }] } } },
    ],
  };
}
