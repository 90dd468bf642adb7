import { queueConfig } from "../grading/queue.ts";
import { finishSync, ROSTER_JOB, rosterJobId, rosterPayload, rosterRetry, syncRoster, type RosterPayload } from "../lti/nrps.ts";
import { PlatformHttpError } from "../lti/service-token.ts";
import type { JobKind } from "./registry.ts";

/**
 * NRPS roster sync of one LTI context (src/lti/nrps.ts). A network error, 429 or 5xx throws and is retried with
 * backoff; a refusal (other 4xx) or the last attempt ends the request (lastRosterSync stamped, the error logged and
 * audited), so the outbox does not ask a platform that refuses again and again.
 */
export const rosterSyncKind: JobKind<RosterPayload> = {
  name: ROSTER_JOB,
  schema: rosterPayload,
  jobId: rosterJobId,
  retry: rosterRetry,

  async handle(ctx, { contextRowId }) {
    const { db, log } = ctx.deps;
    const c = queueConfig(ctx.deps.queue);
    const startedFrom = await db.ltiContext.findUnique({ where: { id: contextRowId }, select: { updatedAt: true, courseId: true } });
    try {
      const result = await syncRoster(db, contextRowId, {
        maxPages: c?.LTI_ROSTER_MAX_PAGES ?? 200,
        timeoutMs: c?.LTI_HTTP_TIMEOUT_MS ?? 10_000,
      });
      log.info({ contextRowId, ...result }, "roster sync");
      return result ? "synced" : "gone";
    } catch (err) {
      const refused = err instanceof PlatformHttpError && err.status < 500 && err.status !== 429 && err.status !== 408;
      if (!startedFrom || !(refused || ctx.attempt.last)) {
        log.warn({ err, contextRowId, attempt: ctx.attempt.number }, "roster sync failed; retrying");
        throw err;
      }
      log.error({ err, contextRowId }, "roster sync gave up");
      await finishSync(db, contextRowId, startedFrom.courseId, startedFrom.updatedAt, {
        failed: String((err as Error).message).slice(0, 500),
      });
      return "failed";
    }
  },

  async recover(db, { graceMs, limit }) {
    const rows = await db.ltiContext.findMany({
      where: {
        lastRosterSync: null,
        membershipsUrl: { not: null },
        updatedAt: { lt: new Date(Date.now() - graceMs) },
        platform: { disabledAt: null },
      },
      orderBy: { updatedAt: "asc" },
      take: limit,
      select: { id: true, updatedAt: true },
    });
    return rows.map((r) => ({
      payload: { contextRowId: r.id },
      take: async () =>
        (
          await db.ltiContext.updateMany({
            where: { id: r.id, lastRosterSync: null, updatedAt: r.updatedAt },
            data: { updatedAt: new Date() },
          })
        ).count === 1,
    }));
  },
};
