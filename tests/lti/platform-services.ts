/**
 * The platform emulator's LTI Advantage services: the OAuth2 token endpoint (client_credentials
 * with a private_key_jwt client assertion verified against the TOOL's JWKS over HTTP), Assignment
 * and Grade Services 2.0 (line items, scores) and Names and Role Provisioning Services 2.0
 * (memberships, paged with Link rel="next"). Never imports the tool's code.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { jwtVerify, type JWTPayload } from "jose";
import type { Platform } from "./platform.ts";

export const MEDIA = {
  lineItem: "application/vnd.ims.lis.v2.lineitem+json",
  lineItems: "application/vnd.ims.lis.v2.lineitemcontainer+json",
  score: "application/vnd.ims.lis.v1.score+json",
  memberships: "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
};
const SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/";
const NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";

export interface LineItem {
  id: string;
  label: string;
  scoreMaximum: number;
  resourceId?: string;
  resourceLinkId?: string;
  tag?: string;
  startDateTime?: string;
  endDateTime?: string;
  /** The URL the platform answers as the line item's id, when not its own /lineitems/:id (a hostile platform). */
  href?: string;
}
export interface Member {
  user_id: string;
  roles: string[];
  status?: "Active" | "Inactive" | "Deleted";
  name?: string;
  email?: string;
  given_name?: string;
  family_name?: string;
}
type Out = [number, unknown, Record<string, string>?];

export interface ServiceState {
  /** Line items by context id (the platform's course). */
  lineItems: Map<string, LineItem[]>;
  /** Every score the platform accepted, in order. */
  scores: { lineItemId: string; body: Record<string, unknown>; at: Date }[];
  /** Every score POST, accepted or not, with the status answered. */
  scoreAttempts: { lineItemId: string; body: unknown; status: number }[];
  tokensIssued: { token: string; scopes: string[]; assertion: JWTPayload; expiresAt: number }[];
  /** Refused token requests, with why. */
  tokenErrors: string[];
  /** Memberships by context id, and the page size NRPS answers with. */
  members: Map<string, Member[]>;
  memberPageSize: number;
  membershipRequests: string[];
  /** The next N score posts fail with this status (and Retry-After / body if given). */
  failScores: { count: number; status: number; retryAfter?: string; body?: unknown };
  /** expires_in of issued tokens, seconds. */
  tokenLifetime: number;
  /** Score posts wait this long before the platform answers (a score in flight). */
  scoreDelayMs: number;
  lineItemCount: number;
  usedJti: Set<string>;
}

export const newServiceState = (): ServiceState => ({
  lineItems: new Map(),
  scores: [],
  scoreAttempts: [],
  tokensIssued: [],
  tokenErrors: [],
  members: new Map(),
  memberPageSize: 50,
  membershipRequests: [],
  failScores: { count: 0, status: 503 },
  tokenLifetime: 3600,
  scoreDelayMs: 0,
  lineItemCount: 0,
  usedJti: new Set(),
});

async function token(p: Platform, form: Record<string, string>): Promise<Out> {
  const refuse = (why: string, error = "invalid_client"): Out => {
    p.state.tokenErrors.push(why);
    return [error === "invalid_client" ? 401 : 400, { error, error_description: why }];
  };
  if (form.grant_type !== "client_credentials") return refuse("grant_type must be client_credentials", "unsupported_grant_type");
  if (form.client_assertion_type !== "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") return refuse("client_assertion_type");
  let claims: JWTPayload;
  try {
    ({ payload: claims } = await jwtVerify(form.client_assertion ?? "", p.toolKeys(), {
      algorithms: ["RS256"],
      issuer: p.clientId,
      subject: p.clientId,
      audience: `${p.url}/token`,
      requiredClaims: ["jti", "exp", "iat"],
    }));
  } catch (err) {
    return refuse(`client assertion: ${(err as Error).message}`);
  }
  if (p.state.usedJti.has(claims.jti!)) return refuse("client assertion jti replayed");
  p.state.usedJti.add(claims.jti!);
  const known = new Set([`${SCOPE}lineitem`, `${SCOPE}lineitem.readonly`, `${SCOPE}result.readonly`, `${SCOPE}score`, NRPS_SCOPE]);
  const scopes = (form.scope ?? "").split(" ").filter((s) => known.has(s));
  if (!scopes.length) return refuse("no known scope requested", "invalid_scope");
  const access = randomBytes(16).toString("hex");
  p.state.tokensIssued.push({ token: access, scopes, assertion: claims, expiresAt: Date.now() + p.state.tokenLifetime * 1000 });
  return [200, { access_token: access, token_type: "Bearer", expires_in: p.state.tokenLifetime, scope: scopes.join(" ") }];
}

/** The bearer token's scopes, or why the request is refused. */
function authorize(p: Platform, req: IncomingMessage, anyOf: string[]): Out | null {
  const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  const t = p.state.tokensIssued.find((x) => x.token === bearer);
  if (!t || t.expiresAt < Date.now()) return [401, { error: "invalid_token" }];
  if (!anyOf.some((s) => t.scopes.includes(s))) return [403, { error: "insufficient_scope", needs: anyOf }];
  return null;
}

const accepts = (req: IncomingMessage, type: string) => (req.headers.accept ?? "").includes(type);
const isType = (req: IncomingMessage, type: string) => (req.headers["content-type"] ?? "").startsWith(type);
const wrongMedia = (want: string): Out => [415, { error: "unsupported_media_type", want }];
/** A line item as the platform shows it: its id is its URL (`href` makes a hostile one point elsewhere). */
const lineItemJson = (p: Platform, { href, ...li }: LineItem) => ({ ...li, id: href ?? `${p.url}/lineitems/${li.id}` });

function findLineItem(p: Platform, id: string): { contextId: string; li: LineItem } | undefined {
  for (const [contextId, items] of p.state.lineItems) {
    const li = items.find((x) => x.id === id);
    if (li) return { contextId, li };
  }
  return undefined;
}

function score(p: Platform, req: IncomingMessage, lineItemId: string, raw: string): Out {
  const denied = authorize(p, req, [`${SCOPE}score`]);
  if (denied) return denied;
  if (!isType(req, MEDIA.score)) return wrongMedia(MEDIA.score);
  if (!findLineItem(p, lineItemId)) return [404, { error: "no such line item" }];
  const body = JSON.parse(raw || "{}") as Record<string, unknown>;
  const f = p.state.failScores;
  if (f.count > 0) {
    f.count--;
    p.state.scoreAttempts.push({ lineItemId, body, status: f.status });
    return [f.status, f.body ?? { error: `emulated ${f.status}` }, f.retryAfter ? { "retry-after": f.retryAfter } : {}];
  }
  const problems = [
    typeof body.userId === "string" && body.userId ? null : "userId",
    ["Initialized", "Started", "InProgress", "Submitted", "Completed"].includes(String(body.activityProgress)) ? null : "activityProgress",
    ["FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"].includes(String(body.gradingProgress)) ? null : "gradingProgress",
    typeof body.timestamp === "string" && !Number.isNaN(Date.parse(body.timestamp)) ? null : "timestamp",
    body.scoreGiven === undefined || (typeof body.scoreGiven === "number" && body.scoreGiven >= 0) ? null : "scoreGiven",
    body.scoreGiven === undefined || (typeof body.scoreMaximum === "number" && body.scoreMaximum > 0) ? null : "scoreMaximum",
  ].filter(Boolean);
  if (problems.length) {
    p.state.scoreAttempts.push({ lineItemId, body, status: 400 });
    return [400, { error: "invalid score", fields: problems }];
  }
  p.state.scoreAttempts.push({ lineItemId, body, status: 200 });
  p.state.scores.push({ lineItemId, body, at: new Date() });
  return [200, {}];
}

function lineItems(p: Platform, req: IncomingMessage, url: URL, contextId: string, raw: string): Out {
  const items = p.state.lineItems.get(contextId) ?? [];
  if (req.method === "POST") {
    const denied = authorize(p, req, [`${SCOPE}lineitem`]);
    if (denied) return denied;
    if (!isType(req, MEDIA.lineItem)) return wrongMedia(MEDIA.lineItem);
    const body = JSON.parse(raw || "{}") as Partial<LineItem>;
    if (!body.label || typeof body.scoreMaximum !== "number" || body.scoreMaximum <= 0)
      return [400, { error: "label and scoreMaximum > 0 required" }];
    const li: LineItem = { ...body, id: String(++p.state.lineItemCount), label: body.label, scoreMaximum: body.scoreMaximum };
    p.state.lineItems.set(contextId, [...items, li]);
    return [201, lineItemJson(p, li), { "content-type": MEDIA.lineItem }];
  }
  const denied = authorize(p, req, [`${SCOPE}lineitem`, `${SCOPE}lineitem.readonly`]);
  if (denied) return denied;
  if (!accepts(req, MEDIA.lineItems)) return [406, { error: "not acceptable", want: MEDIA.lineItems }];
  const q = url.searchParams;
  const found = items.filter(
    (li) =>
      (!q.get("resource_id") || li.resourceId === q.get("resource_id")) &&
      (!q.get("resource_link_id") || li.resourceLinkId === q.get("resource_link_id")) &&
      (!q.get("tag") || li.tag === q.get("tag")),
  );
  return [200, found.map((li) => lineItemJson(p, li)), { "content-type": MEDIA.lineItems }];
}

function memberships(p: Platform, req: IncomingMessage, url: URL, contextId: string): Out {
  const denied = authorize(p, req, [NRPS_SCOPE]);
  if (denied) return denied;
  if (!accepts(req, MEDIA.memberships)) return [406, { error: "not acceptable", want: MEDIA.memberships }];
  p.state.membershipRequests.push(url.pathname + url.search);
  const all = p.state.members.get(contextId) ?? [];
  const size = Math.min(Number(url.searchParams.get("limit")) || p.state.memberPageSize, p.state.memberPageSize);
  const page = Math.max(1, Number(url.searchParams.get("page")) || 1);
  const members = all.slice((page - 1) * size, page * size);
  const headers: Record<string, string> = { "content-type": MEDIA.memberships };
  if (page * size < all.length) headers.link = `<${p.url}/contexts/${contextId}/memberships?page=${page + 1}&limit=${size}>; rel="next"`;
  const context = { id: contextId, label: contextId.toUpperCase(), title: `Course ${contextId}` };
  return [200, { id: `${p.url}${url.pathname}${url.search}`, context, members }, headers];
}

/** Routes the service endpoints; null when the path is not one of them. */
export async function handleServices(
  p: Platform,
  req: IncomingMessage,
  url: URL,
  raw: string,
  form: Record<string, string>,
): Promise<Out | null> {
  const path = url.pathname;
  if (req.method === "POST" && path === "/token") return token(p, form);
  let m = /^\/contexts\/([^/]+)\/lineitems$/.exec(path);
  if (m && (req.method === "GET" || req.method === "POST")) return lineItems(p, req, url, decodeURIComponent(m[1]!), raw);
  m = /^\/lineitems\/([^/]+)$/.exec(path);
  if (m && req.method === "GET") {
    const denied = authorize(p, req, [`${SCOPE}lineitem`, `${SCOPE}lineitem.readonly`]);
    if (denied) return denied;
    const found = findLineItem(p, m[1]!);
    return found ? [200, lineItemJson(p, found.li), { "content-type": MEDIA.lineItem }] : [404, { error: "no such line item" }];
  }
  m = /^\/lineitems\/([^/]+)\/scores$/.exec(path);
  if (m && req.method === "POST") {
    if (p.state.scoreDelayMs) await new Promise((r) => setTimeout(r, p.state.scoreDelayMs));
    return score(p, req, m[1]!, raw);
  }
  m = /^\/contexts\/([^/]+)\/memberships$/.exec(path);
  if (m && req.method === "GET") return memberships(p, req, url, decodeURIComponent(m[1]!));
  return null;
}
