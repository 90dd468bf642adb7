import type { Db } from "../db.ts";
import { ForbiddenError, NotFoundError } from "../errors.ts";
import type { Principal } from "./auth.ts";

export type CourseRole = "student" | "ta" | "instructor";
const STAFF: readonly CourseRole[] = ["ta", "instructor"];

export function requireAdmin(p: Principal): void {
  if (p.role !== "admin") throw new ForbiddenError("Only an admin may do this.");
}

/** A real user behind the call: the bootstrap ADMIN_TOKEN is nobody and cannot act as one. */
export function requireUser(p: Principal): string {
  if (!p.userId) throw new ForbiddenError("The bootstrap ADMIN_TOKEN acts as no user; create a user and use its token.");
  return p.userId;
}

/** The caller's role in the course ("instructor" for admins); 404 when they are not in it, so courses stay unknowable. */
export async function courseRole(db: Db, p: Principal, courseId: string): Promise<CourseRole> {
  const course = await db.course.findUnique({ where: { id: courseId }, select: { id: true } });
  if (course && p.role === "admin") return "instructor";
  const enrollment =
    course && p.userId ? await db.enrollment.findUnique({ where: { courseId_userId: { courseId, userId: p.userId } } }) : null;
  if (!enrollment) throw new NotFoundError("Course", courseId);
  return enrollment.role;
}

export const isStaff = (role: CourseRole): boolean => STAFF.includes(role);

export async function requireCourseRole(db: Db, p: Principal, courseId: string, allowed: readonly CourseRole[]): Promise<CourseRole> {
  const role = await courseRole(db, p, courseId);
  if (!allowed.includes(role)) throw new ForbiddenError(`This needs the course role ${allowed.join(" or ")}; you are ${role}.`);
  return role;
}

export const requireStaff = (db: Db, p: Principal, courseId: string) => requireCourseRole(db, p, courseId, STAFF);
