import { z } from "zod";
import type { Db, Prisma } from "../db.ts";
import type { GradingQueue } from "../grading/queue.ts";
import type { CourseRole } from "../services/access.ts";
import { audit } from "../services/audit.ts";
import { SCOPE } from "./claims.ts";
import { upsertLtiUser } from "./lti-users.ts";
import { enqueueJob } from "./passback.ts";
import { mapLtiRoles } from "./roles.ts";
import { PlatformHttpError, serviceFetch } from "./service-token.ts";

/**
 * Names and Role Provisioning Services 2.0: roster sync. A context's sync is "requested" while its lastRosterSync is
 * NULL (a new context, an instructor's launch, POST /v1/courses/{id}/roster/sync); a finished sync stamps it, but only
 * if the context row did not change since the sync read it (compare-and-set on updatedAt): a request that arrived
 * during the sync leaves it NULL, so the outbox (roster-sync's recover) runs it again.
 */
export const ROSTER_JOB = "lti-roster-sync";
export const rosterPayload = z.object({ contextRowId: z.string().uuid() });
export type RosterPayload = z.infer<typeof rosterPayload>;
export const rosterJobId = (p: RosterPayload) => `lti-roster-${p.contextRowId}`;
export const rosterRetry = () => ({ attempts: 5, backoffMs: 5_000 });
export const NRPS_MEDIA = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json";

/** Marks the context's roster as due and enqueues its sync (for L1's instructor launch and the sync route). */
export async function requestRosterSync(deps: { db: Db; queue: GradingQueue }, contextRowId: string): Promise<void> {
  await deps.db.ltiContext.updateMany({ where: { id: contextRowId }, data: { lastRosterSync: null } });
  await enqueueJob(deps.queue, ROSTER_JOB, rosterPayload.parse({ contextRowId }), rosterJobId({ contextRowId }), rosterRetry());
}

const member = z.looseObject({
  user_id: z.string().min(1),
  roles: z.array(z.string()).default([]),
  status: z.string().optional(),
  name: z.string().optional(),
  given_name: z.string().optional(),
  family_name: z.string().optional(),
  email: z.string().optional(),
});
const container = z.looseObject({ members: z.array(z.unknown()) });

export interface SyncResult {
  pages: number;
  members: number;
  enrolled: number;
  changed: number;
  skipped: number;
  truncated: boolean;
}

/** `<url>; rel="next"` of an RFC 8288 Link header. */
export function nextLink(header: string | null): string | null {
  if (!header) return null;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(m[2]!)) return m[1]!;
  }
  return null;
}

/**
 * Pages through the context's memberships (at most maxPages), links or creates each member's user (LtiUser by sub,
 * name and email from the membership) and enrols Active members with their mapped role, source "roster".
 * Enrolments set through the API (source "api") keep their role; launch- and roster-made ones follow the LMS.
 * Members the LMS lists as Inactive/Deleted, or with no role we map, are skipped; nobody is unenrolled (grades stay).
 */
export async function syncRoster(db: Db, contextRowId: string, opts: { maxPages: number; timeoutMs: number }): Promise<SyncResult | null> {
  const context = await db.ltiContext.findUnique({ where: { id: contextRowId }, include: { platform: true } });
  if (!context) return null;
  const result: SyncResult = { pages: 0, members: 0, enrolled: 0, changed: 0, skipped: 0, truncated: false };
  const usable = context.membershipsUrl && context.scopes.includes(SCOPE.memberships) && !context.platform.disabledAt;
  let url: string | null = usable ? context.membershipsUrl : null;
  const origin = url ? new URL(url).origin : "";
  while (url) {
    if (result.pages >= opts.maxPages) {
      result.truncated = true;
      break;
    }
    const res = await serviceFetch(db, context.platform, [SCOPE.memberships], url, { headers: { accept: NRPS_MEDIA } }, opts.timeoutMs);
    const text = await res.text();
    if (!res.ok) throw new PlatformHttpError(res.status, text, "memberships");
    const page = container.safeParse(JSON.parse(text));
    if (!page.success) throw new PlatformHttpError(res.status, text, "memberships answer is not a membership container");
    result.pages++;
    await db.$transaction(async (tx) => {
      for (const raw of page.data.members) {
        result.members++;
        const m = member.safeParse(raw);
        const role = m.success ? mapLtiRoles(m.data.roles) : null;
        if (!m.success || !role || (m.data.status && m.data.status !== "Active")) {
          result.skipped++;
          continue;
        }
        const userId = await upsertLtiUser(tx, context.platform, {
          sub: m.data.user_id,
          email: m.data.email,
          name: m.data.name,
          givenName: m.data.given_name,
          familyName: m.data.family_name,
        });
        const done = await enrolFromRoster(tx, context.courseId, userId, role);
        if (done === "enrolled") result.enrolled++;
        if (done === "changed") result.changed++;
      }
    });
    const next = nextLink(res.headers.get("link"));
    // The next page must be on the platform that holds the roster: a Link elsewhere is not followed.
    url = next && new URL(next, url).origin === origin ? new URL(next, url).toString() : null;
  }
  await finishSync(db, context.id, context.courseId, context.updatedAt, { ...result, ...(usable ? {} : { noService: true }) });
  return result;
}

/** Stamps lastRosterSync unless the context changed since the sync read it (then it stays due: see above). */
export async function finishSync(db: Db, contextRowId: string, courseId: string, readAt: Date, data: Prisma.InputJsonObject) {
  await db.$transaction(async (tx) => {
    await tx.ltiContext.updateMany({ where: { id: contextRowId, updatedAt: readAt }, data: { lastRosterSync: new Date() } });
    await audit(tx, null, "lti.roster.sync", { type: "course", id: courseId }, { contextRowId, ...data });
  });
}

async function enrolFromRoster(tx: Prisma.TransactionClient, courseId: string, userId: string, role: CourseRole) {
  const key = { courseId_userId: { courseId, userId } };
  const existing = await tx.enrollment.findUnique({ where: key });
  if (!existing) {
    await tx.enrollment.create({ data: { courseId, userId, role, source: "roster" } });
    return "enrolled";
  }
  if (existing.source === "api" || existing.role === role) return "kept";
  await tx.enrollment.update({ where: key, data: { role } });
  return "changed";
}
