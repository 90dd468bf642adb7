import type { Db } from "../db.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { newTokenSecret, sha256 } from "../lib/crypto.ts";
import { isUniqueViolation } from "../lib/prisma-errors.ts";
import { requireAdmin, type CourseRole } from "./access.ts";
import { audit } from "./audit.ts";
import type { Principal } from "./auth.ts";

const DAY_MS = 86_400_000;

export class UserService {
  constructor(private readonly db: Db) {}

  async create(p: Principal, input: { email: string; name: string; role?: "admin" | "user" }) {
    requireAdmin(p);
    try {
      return await this.db.$transaction(async (tx) => {
        const user = await tx.user.create({
          data: { email: input.email.toLowerCase(), name: input.name, role: input.role ?? "user" },
          select: { id: true, email: true, name: true, role: true },
        });
        await audit(tx, p.userId, "user.create", { type: "user", id: user.id }, { role: user.role });
        return user;
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new ConflictError("EMAIL_TAKEN", `A user with email '${input.email}' exists.`);
      throw e;
    }
  }

  async me(p: Principal) {
    if (!p.userId) return { id: null, email: null, name: "bootstrap admin", role: p.role, courses: [] };
    const user = await this.db.user.findUniqueOrThrow({
      where: { id: p.userId },
      include: { enrollments: { include: { course: true } } },
    });
    return {
      id: user.id,
      email: user.email,
      name: user.name,
      role: user.role,
      courses: user.enrollments.map((e) => ({ id: e.courseId, slug: e.course.slug, title: e.course.title, role: e.role as CourseRole })),
    };
  }

  private async requireSelfOrAdmin(p: Principal, userId: string) {
    if (p.role !== "admin" && p.userId !== userId) throw new NotFoundError("User", userId);
    const exists = await this.db.user.findUnique({ where: { id: userId }, select: { id: true } });
    if (!exists) throw new NotFoundError("User", userId);
  }

  /** The secret is returned once; only its hash is stored. */
  async createToken(p: Principal, userId: string, input: { name: string; expiresInDays?: number }) {
    await this.requireSelfOrAdmin(p, userId);
    const secret = newTokenSecret();
    const expiresAt = input.expiresInDays ? new Date(Date.now() + input.expiresInDays * DAY_MS) : null;
    const token = await this.db.$transaction(async (tx) => {
      const t = await tx.apiToken.create({ data: { userId, name: input.name, tokenHash: sha256(secret), expiresAt } });
      await audit(tx, p.userId, "token.create", { type: "api_token", id: t.id }, { userId });
      return t;
    });
    return { id: token.id, token: secret, name: token.name, expiresAt: token.expiresAt };
  }

  async listTokens(p: Principal, userId: string) {
    await this.requireSelfOrAdmin(p, userId);
    return this.db.apiToken.findMany({
      where: { userId },
      orderBy: { createdAt: "asc" },
      select: { id: true, name: true, kind: true, createdAt: true, expiresAt: true, revokedAt: true, lastUsedAt: true },
    });
  }

  async revokeToken(p: Principal, userId: string, tokenId: string) {
    await this.requireSelfOrAdmin(p, userId);
    const { count } = await this.db.apiToken.updateMany({
      where: { id: tokenId, userId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    if (count === 0) {
      const exists = await this.db.apiToken.findFirst({ where: { id: tokenId, userId } });
      if (!exists) throw new NotFoundError("Token", tokenId);
    }
    await audit(this.db, p.userId, "token.revoke", { type: "api_token", id: tokenId }, { userId });
  }
}
