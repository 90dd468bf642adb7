import type { Config } from "../config.ts";
import type { Db, Prisma } from "../db.ts";
import { ConflictError, NotFoundError, UnprocessableError } from "../errors.ts";
import { newTokenSecret, sha256 } from "../lib/crypto.ts";
import { isUniqueViolation } from "../lib/prisma-errors.ts";
import { asc, keysetArgs, toPage, type PageArgs } from "../lib/keyset.ts";
import { requireAdmin, type CourseRole } from "./access.ts";
import { audit } from "./audit.ts";
import { retireBootstrapToken, type Principal } from "./auth.ts";
import { forgetTokens } from "./principal-cache.ts";

const DAY_MS = 86_400_000;

export class UserService {
  constructor(
    private readonly db: Db,
    private readonly config: Pick<Config, "TOKEN_MAX_DAYS">,
  ) {}

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
      // A course-scoped token (LTI session, integration) shows only its own course, like everything else it reads.
      courses: user.enrollments
        .filter((e) => !p.courseId || e.courseId === p.courseId)
        .map((e) => ({ id: e.courseId, slug: e.course.slug, title: e.course.title, role: e.role as CourseRole })),
    };
  }

  private async requireSelfOrAdmin(p: Principal, userId: string) {
    if (p.role !== "admin" && p.userId !== userId) throw new NotFoundError("User", userId);
    const exists = await this.db.user.findUnique({ where: { id: userId }, select: { id: true } });
    if (!exists) throw new NotFoundError("User", userId);
  }

  /**
   * The secret is returned once; only its hash is stored. Every personal token expires, at most TOKEN_MAX_DAYS
   * after it is made (the default), so a forgotten token does not live forever.
   */
  async createToken(p: Principal, userId: string, input: { name: string; expiresInDays?: number }) {
    await this.requireSelfOrAdmin(p, userId);
    const max = this.config.TOKEN_MAX_DAYS;
    if (input.expiresInDays !== undefined && input.expiresInDays > max)
      throw new UnprocessableError(
        "TOKEN_LIFETIME_TOO_LONG",
        `A token lives at most ${max} days (TOKEN_MAX_DAYS); ask for ${max} or fewer.`,
        {
          max,
        },
      );
    const t = await this.db.$transaction((tx) => this.mint(tx, p.userId, userId, input.name, input.expiresInDays ?? max));
    return { id: t.id, token: t.secret, name: t.name, expiresAt: t.expiresAt };
  }

  /**
   * `npm run admin:token`: the way back in once ADMIN_TOKEN is retired. Finds the user by email or creates
   * it, makes it an admin if it was not, and mints a token. Runs on the server, so it is trusted.
   */
  async issueAdminToken(input: { email: string; name: string }) {
    const email = input.email.toLowerCase();
    return this.db.$transaction(async (tx) => {
      const before = await tx.user.findUnique({ where: { email } });
      const user = before
        ? await tx.user.update({ where: { id: before.id }, data: { role: "admin" } })
        : await tx.user.create({ data: { email, name: email.split("@")[0]!, role: "admin" } });
      if (!before) await audit(tx, null, "user.create", { type: "user", id: user.id }, { role: "admin", via: "admin:token" });
      else if (before.role !== "admin") await audit(tx, null, "user.promote", { type: "user", id: user.id }, { via: "admin:token" });
      const t = await this.mint(tx, null, user.id, input.name, this.config.TOKEN_MAX_DAYS);
      return { user: { id: user.id, email: user.email, created: !before, promoted: Boolean(before && before.role !== "admin") }, token: t };
    });
  }

  private async mint(tx: Prisma.TransactionClient, actorId: string | null, userId: string, name: string, days: number) {
    const secret = newTokenSecret();
    const expiresAt = new Date(Date.now() + days * DAY_MS);
    const t = await tx.apiToken.create({
      data: { userId, name, tokenHash: sha256(secret), expiresAt },
      include: { user: { select: { role: true } } },
    });
    if (t.user.role === "admin") await retireBootstrapToken(tx, "an admin user holds a token");
    await audit(tx, actorId, "token.create", { type: "api_token", id: t.id }, { userId });
    return { id: t.id, secret, name: t.name, expiresAt };
  }

  async listTokens(p: Principal, userId: string, page: PageArgs) {
    await this.requireSelfOrAdmin(p, userId);
    const order = [asc("createdAt", "date"), asc("id")];
    const k = keysetArgs<Prisma.ApiTokenWhereInput, Prisma.ApiTokenOrderByWithRelationInput>(order, page);
    const rows = await this.db.apiToken.findMany({
      where: { AND: [{ userId }, k.where] },
      orderBy: k.orderBy,
      take: k.take,
      select: { id: true, name: true, kind: true, createdAt: true, expiresAt: true, revokedAt: true, lastUsedAt: true },
    });
    return toPage(rows, order, page, (r) => r);
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
    forgetTokens({ tokenId });
  }
}
