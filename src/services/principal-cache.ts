import { LRUCache } from "lru-cache";
import type { Principal } from "./auth.ts";

/**
 * Tokens seen lately, by the sha256 of their secret: the principal and what can end it (expiry, revocation).
 * One cache per process, so that a revocation through any app in the process forgets the token at once; other
 * processes (another API instance, a CLI) are bounded by AUTH_CACHE_TTL_S, each reader's own TTL deciding whether
 * an entry is still fresh. Unknown or refused tokens are never kept: a new token works at once, a guess costs a read.
 */
export interface CachedToken {
  principal: Principal;
  expiresAt: Date | null;
  /** When the row was read (ms): entries older than the reader's TTL are read again. */
  readAt: number;
  /** When lastUsedAt was last written (or read as written), so the write stays throttled between reads. */
  lastUsedAt: number;
}

const MAX_TOKENS = 20_000;
const cache = new LRUCache<string, CachedToken>({ max: MAX_TOKENS });

export const principalCache = {
  get(tokenHash: string, ttlMs: number): CachedToken | undefined {
    if (ttlMs <= 0) return undefined;
    const hit = cache.get(tokenHash);
    if (!hit) return undefined;
    if (Date.now() - hit.readAt >= ttlMs) {
      cache.delete(tokenHash);
      return undefined;
    }
    return hit;
  },
  set(tokenHash: string, entry: CachedToken, ttlMs: number): void {
    if (ttlMs > 0) cache.set(tokenHash, entry);
  },
};

/** A token was revoked (or its user's powers changed): this process stops honouring it on the next request. */
export function forgetTokens(match: { tokenId?: string; userId?: string }): void {
  for (const [hash, entry] of cache.entries()) {
    if ((match.tokenId && entry.principal.tokenId === match.tokenId) || (match.userId && entry.principal.userId === match.userId))
      cache.delete(hash);
  }
}
