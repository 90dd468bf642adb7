import type { Config } from "../config.ts";
import type { Db, Prisma } from "../db.ts";
import { NotFoundError, UnprocessableError } from "../errors.ts";
import { asc, keysetArgs, toPage, type PageArgs } from "../lib/keyset.ts";
import { newTokenSecret, sha256 } from "../lib/crypto.ts";
import { requireCourseRole, requireUser } from "./access.ts";
import { audit } from "./audit.ts";
import type { Principal } from "./auth.ts";
import { forgetTokens } from "./principal-cache.ts";

/** What a course-scoped integration token may be limited to; see token-scope.ts for what each allows. */
export const TOKEN_SCOPES = ["grades:read"] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];
const DAY_MS = 86_400_000;

/**
 * Integration tokens: for an LMS without LTI, or a script, that pulls one course's grades. Owned by the instructor
 * (or admin) who made it, so it acts as that user, but only in this course and only as the scope allows.
 */
export class CourseTokenService {
  constructor(
    private readonly db: Db,
    private readonly config: Pick<Config, "TOKEN_MAX_DAYS">,
  ) {}

  async create(p: Principal, courseId: string, input: { name: string; scope: TokenScope; expiresInDays?: number }) {
    await requireCourseRole(this.db, p, courseId, ["instructor"]);
    const userId = requireUser(p);
    const max = this.config.TOKEN_MAX_DAYS;
    if (input.expiresInDays !== undefined && input.expiresInDays > max)
      throw new UnprocessableError(
        "TOKEN_LIFETIME_TOO_LONG",
        `A token lives at most ${max} days (TOKEN_MAX_DAYS); ask for ${max} or fewer.`,
        { max },
      );
    const secret = newTokenSecret();
    const expiresAt = new Date(Date.now() + (input.expiresInDays ?? max) * DAY_MS);
    const token = await this.db.$transaction(async (tx) => {
      const t = await tx.apiToken.create({
        data: { userId, name: input.name, kind: "integration", tokenHash: sha256(secret), expiresAt, courseId, scope: input.scope },
      });
      await audit(tx, userId, "token.create", { type: "api_token", id: t.id }, { courseId, scope: input.scope, kind: "integration" });
      return t;
    });
    return { id: token.id, token: secret, name: token.name, scope: input.scope, courseId, expiresAt };
  }

  async list(p: Principal, courseId: string, page: PageArgs) {
    await requireCourseRole(this.db, p, courseId, ["instructor"]);
    const order = [asc("createdAt", "date"), asc("id")];
    const k = keysetArgs<Prisma.ApiTokenWhereInput, Prisma.ApiTokenOrderByWithRelationInput>(order, page);
    const rows = await this.db.apiToken.findMany({
      where: { AND: [{ courseId, kind: "integration" }, k.where] },
      orderBy: k.orderBy,
      take: k.take,
      select: { id: true, name: true, scope: true, userId: true, createdAt: true, expiresAt: true, revokedAt: true, lastUsedAt: true },
    });
    return toPage(rows, order, page, (r) => r);
  }

  async revoke(p: Principal, courseId: string, tokenId: string) {
    await requireCourseRole(this.db, p, courseId, ["instructor"]);
    const token = await this.db.apiToken.findFirst({ where: { id: tokenId, courseId, kind: "integration" } });
    if (!token) throw new NotFoundError("Token", tokenId);
    if (token.revokedAt) return;
    await this.db.$transaction(async (tx) => {
      await tx.apiToken.update({ where: { id: tokenId }, data: { revokedAt: new Date() } });
      await audit(tx, p.userId, "token.revoke", { type: "api_token", id: tokenId }, { courseId });
    });
    forgetTokens({ tokenId });
  }
}
