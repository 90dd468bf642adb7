import type { Db } from "../db.ts";
import { SCOPE } from "./claims.ts";
import { PlatformHttpError, serviceFetch, type TokenPlatform } from "./service-token.ts";

/**
 * Assignment and Grade Services 2.0: the line item of an assignment in a platform's course, and score posts to it.
 * Media types and paths per the 1EdTech AGS 2.0 spec (line item container GET/POST, `<lineitem>/scores`).
 */
export const AGS_MEDIA = {
  lineItem: "application/vnd.ims.lis.v2.lineitem+json",
  container: "application/vnd.ims.lis.v2.lineitemcontainer+json",
  score: "application/vnd.ims.lis.v1.score+json",
} as const;

const LINE_ITEM_SCOPES = [SCOPE.lineItem];
export const SCORE_SCOPES = [SCOPE.score];

export class NoLineItemService extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoLineItemService";
  }
}

/**
 * The URL of the assignment's line item in this context, made at most once: our row if we have it; else, under an
 * advisory lock on (context, assignment) so two passbacks at once cannot both create one, the platform's own line
 * item with resourceId = the assignment id (a deep-linked link's item, or one we made before losing our row); else a
 * new one (label = title, scoreMaximum = the pinned revision's total points, resourceId, resourceLinkId when known).
 */
export async function ensureLineItem(db: Db, contextRowId: string, assignmentId: string, timeoutMs: number): Promise<string> {
  const key = { contextRowId_assignmentId: { contextRowId, assignmentId } };
  const known = await db.ltiLineItem.findUnique({ where: key });
  if (known) return known.url;
  return db.$transaction(
    async (tx) => {
      await tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext(${`lti-line-item:${contextRowId}:${assignmentId}`})::bigint)`;
      const again = await tx.ltiLineItem.findUnique({ where: key });
      if (again) return again.url;
      const context = await tx.ltiContext.findUniqueOrThrow({ where: { id: contextRowId }, include: { platform: true } });
      if (!context.lineItemsUrl || !context.scopes.includes(SCOPE.lineItem))
        throw new NoLineItemService("The platform granted no line item service (AGS lineitem scope) for this course.");
      const assignment = await tx.assignment.findUniqueOrThrow({
        where: { id: assignmentId },
        include: { revision: { include: { problems: { select: { points: true } } } } },
      });
      const link = await tx.ltiResourceLink.findFirst({
        where: { platformId: context.platformId, assignmentId, contextRowId },
        orderBy: { createdAt: "asc" },
      });
      const url =
        (await findLineItem(db, context.platform, context.lineItemsUrl, assignmentId, timeoutMs)) ??
        (await createLineItem(db, context.platform, context.lineItemsUrl, timeoutMs, {
          label: assignment.title,
          scoreMaximum: assignment.revision.problems.reduce((t, p) => t + p.points, 0),
          resourceId: assignment.id,
          ...(link ? { resourceLinkId: link.resourceLinkId } : {}),
          tag: "autograder",
        }));
      // Scores go to this URL with our bearer token: only to the host that serves the course's line items.
      if (!sameOrigin(url, context.lineItemsUrl))
        throw new NoLineItemService(`The platform named a line item on another host (${url}); refusing to send scores there.`);
      await tx.ltiLineItem.create({ data: { contextRowId, assignmentId, url } });
      return url;
    },
    // The lock is held across the platform's answers: up to a lookup, a token grant and a create.
    { timeout: 3 * timeoutMs + 5_000, maxWait: 10_000 },
  );
}

async function findLineItem(db: Db, platform: TokenPlatform, containerUrl: string, assignmentId: string, timeoutMs: number) {
  const url = new URL(containerUrl);
  url.searchParams.set("resource_id", assignmentId);
  const res = await serviceFetch(db, platform, LINE_ITEM_SCOPES, url.toString(), { headers: { accept: AGS_MEDIA.container } }, timeoutMs);
  const text = await res.text();
  if (!res.ok) throw new PlatformHttpError(res.status, text, "line item lookup");
  const items = JSON.parse(text) as { id?: unknown; resourceId?: unknown }[];
  // A platform that ignores the filter returns everything: match on resourceId ourselves.
  const mine = Array.isArray(items) ? items.find((i) => i.resourceId === assignmentId && typeof i.id === "string") : undefined;
  return (mine?.id as string | undefined) ?? null;
}

async function createLineItem(db: Db, platform: TokenPlatform, containerUrl: string, timeoutMs: number, body: Record<string, unknown>) {
  const res = await serviceFetch(
    db,
    platform,
    LINE_ITEM_SCOPES,
    containerUrl,
    { method: "POST", headers: { "content-type": AGS_MEDIA.lineItem, accept: AGS_MEDIA.lineItem }, body: JSON.stringify(body) },
    timeoutMs,
  );
  const text = await res.text();
  if (!res.ok) throw new PlatformHttpError(res.status, text, "line item creation");
  const item = JSON.parse(text) as { id?: unknown };
  if (typeof item.id !== "string") throw new PlatformHttpError(res.status, text, "line item creation answered no id");
  return item.id;
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/** `<lineitem>/scores`, keeping the line item URL's query string (AGS 2.0 §3.4). */
export function scoresUrl(lineItemUrl: string): string {
  const url = new URL(lineItemUrl);
  url.pathname = `${url.pathname.replace(/\/$/, "")}/scores`;
  return url.toString();
}

export interface ScoreBody {
  userId: string;
  scoreGiven: number;
  scoreMaximum: number;
  comment?: string;
  timestamp: string;
  activityProgress: "Completed";
  gradingProgress: "FullyGraded";
}

/** The platform's answer to one score post: status, body (as text) and Retry-After in ms if it sent one. */
export async function postScore(db: Db, platform: TokenPlatform, lineItemUrl: string, score: ScoreBody, timeoutMs: number) {
  const res = await serviceFetch(
    db,
    platform,
    SCORE_SCOPES,
    scoresUrl(lineItemUrl),
    { method: "POST", headers: { "content-type": AGS_MEDIA.score }, body: JSON.stringify(score) },
    timeoutMs,
  );
  return { status: res.status, body: await res.text(), retryAfterMs: retryAfterMs(res.headers.get("retry-after")) };
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
