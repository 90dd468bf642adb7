import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** A new secret API token: a recognisable prefix so leaked tokens can be found by scanners. */
export const newTokenSecret = (): string => `agt_${randomBytes(32).toString("base64url")}`;

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Per (student, problem) seed: keyed, so nobody can compute another student's numbers. */
export const studentSeed = (secret: string, userId: string, setSlug: string, problemSlug: string): string =>
  createHmac("sha256", secret).update(`${userId}\0${setSlug}\0${problemSlug}`).digest("hex").slice(0, 32);
