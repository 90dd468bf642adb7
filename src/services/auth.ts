import type { Config } from "../config.ts";
import type { Db, Prisma } from "../db.ts";
import { UnauthorizedError } from "../errors.ts";
import { safeEqual, sha256 } from "../lib/crypto.ts";

/** Who is calling. `userId` is null only for the bootstrap ADMIN_TOKEN, which is nobody in particular. */
export interface Principal {
  userId: string | null;
  role: "admin" | "user";
  tokenId: string | null;
  /** Set for LTI session and integration tokens: the token acts only in this course (memberRole answers null elsewhere). */
  courseId?: string | null;
  /** What a scoped token may do (e.g. "grades:read", see token-scope.ts); null = whatever its user may do. */
  scope?: string | null;
}

const LAST_USED_RESOLUTION_MS = 60_000;
/** Setting that retires ADMIN_TOKEN for good, written once an admin user holds a token. */
export const BOOTSTRAP_RETIRED = "bootstrap.retired";

/** Called in the transaction that gives an admin user a token: from then on ADMIN_TOKEN is refused forever. */
export async function retireBootstrapToken(tx: Prisma.TransactionClient | Db, reason: string): Promise<void> {
  await tx.setting.upsert({
    where: { key: BOOTSTRAP_RETIRED },
    create: { key: BOOTSTRAP_RETIRED, value: { at: new Date().toISOString(), reason } },
    update: {},
  });
}

export class AuthService {
  constructor(
    private readonly db: Db,
    private readonly config: Pick<Config, "ADMIN_TOKEN">,
  ) {}

  /** Every refusal is a 401; a guessed token costs one indexed read and no write. */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!match) throw new UnauthorizedError();
    const secret = match[1]!;

    const token = await this.db.apiToken.findUnique({ where: { tokenHash: sha256(secret) }, include: { user: true } });
    if (token) {
      if (token.revokedAt) throw new UnauthorizedError("TOKEN_REVOKED", "This token was revoked; ask for a new one.");
      if (token.expiresAt && token.expiresAt <= new Date())
        throw new UnauthorizedError("TOKEN_EXPIRED", `This token expired at ${token.expiresAt.toISOString()}.`);
      if (!token.lastUsedAt || Date.now() - token.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
        await this.db.apiToken.update({ where: { id: token.id }, data: { lastUsedAt: new Date() } });
      }
      // An LTI session never carries admin powers: the platform vouches for a person in its course, nothing more.
      const role = token.kind === "session" ? "user" : token.user.role;
      return { userId: token.userId, role, tokenId: token.id, courseId: token.courseId, scope: token.scope };
    }

    const admin = this.config.ADMIN_TOKEN;
    if (admin && safeEqual(secret, admin)) return this.bootstrap();
    throw new UnauthorizedError("INVALID_TOKEN", "Unknown token: check it, or ask an admin for a new one.");
  }

  /**
   * ADMIN_TOKEN only bootstraps: once an admin user holds a token it is refused forever (a stored flag, so
   * revoking every admin token does not revive a possibly leaked env var); the way back in is `npm run admin:token`.
   */
  private async bootstrap(): Promise<Principal> {
    const retired = await this.db.setting.findUnique({ where: { key: BOOTSTRAP_RETIRED } });
    if (!retired) {
      // Databases from before the flag existed: an admin token already issued retires the bootstrap now.
      const adminTokens = await this.db.apiToken.count({ where: { user: { role: "admin" } } });
      if (adminTokens === 0) return { userId: null, role: "admin", tokenId: null, courseId: null, scope: null };
      await retireBootstrapToken(this.db, "an admin user holds a token");
    }
    throw new UnauthorizedError(
      "BOOTSTRAP_TOKEN_RETIRED",
      "ADMIN_TOKEN is retired: an admin user has had a token. Use an admin's token, or on the server run " +
        "`npm run admin:token -- --email <admin email>` to mint a new one.",
    );
  }
}
