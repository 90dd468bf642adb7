import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import type { Db } from "../db.ts";
import { signingKey } from "./keys.ts";

/**
 * OAuth2 access tokens for LTI Advantage services (1EdTech Security Framework §4.1: client_credentials grant with a
 * JWT client assertion signed by the tool's key; iss = sub = client_id, aud = the platform's token URL).
 * Tokens are cached per (platform, scopes) in this process until a minute before they expire: each worker process
 * asks the platform at most once an hour per scope set, instead of once per score. The cache is in-process on
 * purpose: a token is worth one HTTP round trip, and keeping bearer tokens out of Postgres and Redis is safer.
 */
export interface TokenPlatform {
  id: string;
  clientId: string;
  authTokenUrl: string;
}

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** A token is thrown away this long before the platform says it expires (clock skew, a slow request). */
const EARLY_MS = 60_000;
const cache = new Map<string, { token: string; expiresAt: number }>();
const inFlight = new Map<string, Promise<string>>();

export class PlatformHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: the platform answered ${status}: ${body.slice(0, 300)}`);
    this.name = "PlatformHttpError";
  }
}

const keyOf = (platformId: string, scopes: readonly string[]) => `${platformId} ${[...scopes].sort().join(" ")}`;

/** A bearer token for `scopes` on this platform, from the cache or freshly granted. Throws PlatformHttpError or a network error. */
export async function serviceToken(db: Db, platform: TokenPlatform, scopes: readonly string[], timeoutMs: number): Promise<string> {
  const key = keyOf(platform.id, scopes);
  const hit = cache.get(key);
  if (hit && hit.expiresAt > Date.now()) return hit.token;
  // Concurrent passbacks of one platform share one grant instead of each asking for a token.
  let pending = inFlight.get(key);
  if (!pending) {
    pending = grant(db, platform, scopes, timeoutMs).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

/** After a 401 from a service: the cached token was revoked or expired early; the next call asks for a new one. */
export function forgetToken(platformId: string, scopes: readonly string[]): void {
  cache.delete(keyOf(platformId, scopes));
}

async function grant(db: Db, platform: TokenPlatform, scopes: readonly string[], timeoutMs: number): Promise<string> {
  const { kid, privateKey } = await signingKey(db);
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
    .setIssuer(platform.clientId)
    .setSubject(platform.clientId)
    .setAudience(platform.authTokenUrl)
    .setIssuedAt()
    .setExpirationTime("5m")
    .setJti(randomUUID())
    .sign(privateKey);
  const res = await fetch(platform.authTokenUrl, {
    method: "POST",
    headers: { accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: assertion,
      scope: scopes.join(" "),
    }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new PlatformHttpError(res.status, text, "access token request");
  let body: { access_token?: unknown; expires_in?: unknown };
  try {
    body = JSON.parse(text);
  } catch {
    throw new PlatformHttpError(res.status, text, "access token response is not JSON");
  }
  if (typeof body.access_token !== "string" || !body.access_token)
    throw new PlatformHttpError(res.status, text, "access token response has no access_token");
  // expires_in is RECOMMENDED, not required: without it, an hour (what platforms commonly grant).
  const lifetimeS = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 3600;
  cache.set(keyOf(platform.id, scopes), { token: body.access_token, expiresAt: Date.now() + Math.max(0, lifetimeS * 1000 - EARLY_MS) });
  return body.access_token;
}

/**
 * A service call with a bearer token for `scopes`: on 401 the token is dropped and the call made once more with a new
 * one (a platform may revoke tokens before they expire). Network errors and timeouts throw.
 */
export async function serviceFetch(
  db: Db,
  platform: TokenPlatform,
  scopes: readonly string[],
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string },
  timeoutMs: number,
): Promise<Response> {
  for (let round = 0; ; round++) {
    const token = await serviceToken(db, platform, scopes, timeoutMs);
    const res = await fetch(url, {
      ...init,
      headers: { ...init.headers, authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status !== 401 || round > 0) return res;
    forgetToken(platform.id, scopes);
    await res.body?.cancel();
  }
}
