import type { Config } from "../config.ts";
import type { Db } from "../db.ts";
import { UnauthorizedError } from "../errors.ts";
import { safeEqual, sha256 } from "../lib/crypto.ts";

/** Who is calling. `userId` is null only for the bootstrap ADMIN_TOKEN, which is nobody in particular. */
export interface Principal {
  userId: string | null;
  role: "admin" | "user";
  tokenId: string | null;
}

const LAST_USED_RESOLUTION_MS = 60_000;

export class AuthService {
  constructor(
    private readonly db: Db,
    private readonly config: Pick<Config, "ADMIN_TOKEN">,
  ) {}

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
      return { userId: token.userId, role: token.user.role, tokenId: token.id };
    }

    // ADMIN_TOKEN only bootstraps: once an admin user holds a live token it is refused, so a leaked env var
    // stops mattering; if every admin token is revoked or expired it works again as the way back in.
    const admin = this.config.ADMIN_TOKEN;
    if (admin && safeEqual(secret, admin)) {
      const live = await this.db.apiToken.count({
        where: { user: { role: "admin" }, revokedAt: null, OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] },
      });
      if (live === 0) return { userId: null, role: "admin", tokenId: null };
      throw new UnauthorizedError(
        "BOOTSTRAP_TOKEN_RETIRED",
        "ADMIN_TOKEN only works until an admin user has an API token; use that token.",
      );
    }
    throw new UnauthorizedError("INVALID_TOKEN", "Unknown token: check it, or ask an admin for a new one.");
  }
}
