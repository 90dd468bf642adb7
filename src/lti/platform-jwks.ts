import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwksCache,
  jwtVerify,
  type ExportedJWKSCache,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from "jose";

export interface JwksOptions {
  /** After a fetch, how long an unknown kid waits before it may trigger another fetch (protects the platform). */
  cooldownMs: number;
  /** How long a fetched key set is trusted without asking again. */
  maxAgeMs: number;
  timeoutMs: number;
  /** Fetch attempts per verification when the platform's JWKS cannot be fetched. */
  attempts: number;
}

export const DEFAULT_JWKS_OPTIONS: JwksOptions = { cooldownMs: 30_000, maxAgeMs: 600_000, timeoutMs: 5_000, attempts: 3 };

/** The platform's JWKS could not be fetched at all, and no earlier copy is known. */
export class JwksUnavailableError extends Error {}

/**
 * Platforms' key sets, one jose remote set per JWKS URL, kept for the app's life. jose refetches when a token names
 * a kid it has not seen (after the cooldown), so a key rotation on the platform is picked up without a restart.
 * A failed fetch is retried with backoff; when the platform stays unreachable, the last key set fetched
 * successfully still verifies (a platform outage must not break launches signed with keys we already know).
 */
export class PlatformKeySets {
  private readonly sets = new Map<string, { remote: JWTVerifyGetKey; cache: ExportedJWKSCache | Record<string, never> }>();

  constructor(private readonly options: JwksOptions = DEFAULT_JWKS_OPTIONS) {}

  async verify(token: string, jwksUrl: string, verifyOptions: JWTVerifyOptions): Promise<JWTPayload> {
    const set = this.setFor(jwksUrl);
    for (let attempt = 1; ; attempt++) {
      try {
        return (await jwtVerify(token, set.remote, verifyOptions)).payload;
      } catch (e) {
        if (!isFetchFailure(e)) throw e;
        if (attempt < this.options.attempts) {
          await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
          continue;
        }
        const known = "jwks" in set.cache ? set.cache.jwks : undefined;
        if (known) return (await jwtVerify(token, createLocalJWKSet(known), verifyOptions)).payload;
        throw new JwksUnavailableError(`${jwksUrl}: ${(e as Error).message}`);
      }
    }
  }

  private setFor(url: string) {
    let set = this.sets.get(url);
    if (!set) {
      const cache: ExportedJWKSCache | Record<string, never> = {};
      const remote = createRemoteJWKSet(new URL(url), {
        cooldownDuration: this.options.cooldownMs,
        cacheMaxAge: this.options.maxAgeMs,
        timeoutDuration: this.options.timeoutMs,
        headers: { accept: "application/json" },
        [jwksCache]: cache,
      });
      set = { remote, cache };
      this.sets.set(url, set);
    }
    return set;
  }
}

/** A fetch that failed (network, timeout, non-200, not a key set), as opposed to a token that is wrong. */
function isFetchFailure(e: unknown): boolean {
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid) return true;
  if (e instanceof errors.JOSEError) return e.code === "ERR_JOSE_GENERIC";
  return e instanceof TypeError || (e as { name?: string })?.name === "AbortError";
}
