import type { Redis } from "ioredis";

// INCR and set the window's expiry on the first hit, atomically, and say how long the window has left.
const HIT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

/**
 * A fixed-window counter in Redis, so every API instance counts into the same window. Used where
 * @fastify/rate-limit does not fit: it counts every request, this counts only what the caller says to
 * (e.g. failed authentications).
 */
export class WindowCounter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly windowMs: number,
  ) {}

  /** Counts one hit; null when Redis cannot answer (the caller decides to let the request through). */
  async hit(key: string): Promise<{ count: number; resetMs: number } | null> {
    try {
      const [count, ttl] = (await this.redis.eval(HIT, 1, `${this.prefix}${key}`, this.windowMs)) as [number, number];
      return { count, resetMs: ttl > 0 ? ttl : this.windowMs };
    } catch {
      return null;
    }
  }
}
