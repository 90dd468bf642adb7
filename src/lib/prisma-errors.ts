import { Prisma } from "../db.ts";

/** True for a unique-constraint violation (P2002), the one Prisma error services turn into a 409. */
export const isUniqueViolation = (e: unknown): boolean => e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2002";
