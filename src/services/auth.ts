import type { Config } from "../config.ts";
import type { Db, Prisma } from "../db.ts";
import { UnauthorizedError } from "../errors.ts";
import { safeEqual, sha256 } from "../lib/crypto.ts";
import { principalCache, type CachedToken } from "./principal-cache.ts";

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

const expired = (at: Date) => new UnauthorizedError("TOKEN_EXPIRED", `This token expired at ${at.toISOString()}.`);

export class AuthService {
  constructor(
    private readonly db: Db,
    private readonly config: Pick<Config, "ADMIN_TOKEN"> & Partial<Pick<Config, "AUTH_CACHE_TTL_S">>,
  ) {}

  /**
   * Every refusal is a 401; a guessed token costs one indexed read and no write. A token seen in the last
   * AUTH_CACHE_TTL_S costs no read at all (principal-cache.ts: the bound on a revocation made elsewhere).
   */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!match) throw new UnauthorizedError();
    const secret = match[1]!;
    const tokenHash = sha256(secret);
    const ttlMs = (this.config.AUTH_CACHE_TTL_S ?? 0) * 1000;

    const cached = principalCache.get(tokenHash, ttlMs);
    if (cached) {
      if (cached.expiresAt && cached.expiresAt <= new Date()) throw expired(cached.expiresAt);
      this.touch(cached);
      return cached.principal;
    }
    const token = await this.db.apiToken.findUnique({ where: { tokenHash }, include: { user: { select: { role: true } } } });
    if (token) {
      if (token.revokedAt) throw new UnauthorizedError("TOKEN_REVOKED", "This token was revoked; ask for a new one.");
      if (token.expiresAt && token.expiresAt <= new Date()) throw expired(token.expiresAt);
      // An LTI session never carries admin powers: the platform vouches for a person in its course, nothing more.
      const role = token.kind === "session" ? "user" : token.user.role;
      const principal: Principal = { userId: token.userId, role, tokenId: token.id, courseId: token.courseId, scope: token.scope };
      const entry = { principal, expiresAt: token.expiresAt, readAt: Date.now(), lastUsedAt: token.lastUsedAt?.getTime() ?? 0 };
      principalCache.set(tokenHash, entry, ttlMs);
      this.touch(entry);
      return principal;
    }

    const admin = this.config.ADMIN_TOKEN;
    if (admin && safeEqual(secret, admin)) return this.bootstrap();
    throw new UnauthorizedError("INVALID_TOKEN", "Unknown token: check it, or ask an admin for a new one.");
  }

  /** lastUsedAt at most once a minute per token, and never awaited: bookkeeping stays off the request's path. */
  private touch(entry: CachedToken) {
    const now = Date.now();
    if (now - entry.lastUsedAt <= LAST_USED_RESOLUTION_MS) return;
    entry.lastUsedAt = now;
    this.db.apiToken
      .update({ where: { id: entry.principal.tokenId! }, data: { lastUsedAt: new Date(now) } })
      .catch(() => undefined /* the token went away or the database is closing: nothing to record */);
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
