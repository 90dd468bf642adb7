import { queueConfig } from "../grading/queue.ts";
import { deliverPassback } from "../lti/passback-send.ts";
import { PASSBACK_JOB, passbackJobId, passbackPayload, passbackRetry, type PassbackPayload } from "../lti/passback.ts";
import type { JobKind } from "./registry.ts";

/**
 * LTI score passback: delivers one ScorePassback row (src/lti/passback-send.ts). The LMS's answers are retried by
 * the row's own policy (LTI_PASSBACK_ATTEMPTS, LTI_PASSBACK_BACKOFF_MS doubling, Retry-After honoured) through
 * `delayUntil`, which does not use up BullMQ attempts; BullMQ's retries (passbackRetry) only cover a thrown error
 * such as Postgres being away, and a row such an error leaves pending is found again by `recover`.
 */
export const ltiPassbackKind: JobKind<PassbackPayload> = {
  name: PASSBACK_JOB,
  schema: passbackPayload,
  jobId: passbackJobId,
  retry: passbackRetry,

  async handle(ctx, { passbackId }) {
    const c = queueConfig(ctx.deps.queue);
    const settings = {
      attempts: c?.LTI_PASSBACK_ATTEMPTS ?? 8,
      backoffMs: c?.LTI_PASSBACK_BACKOFF_MS ?? 5_000,
      timeoutMs: c?.LTI_HTTP_TIMEOUT_MS ?? 10_000,
    };
    const outcome = await deliverPassback(ctx.deps.db, passbackId, settings);
    if (outcome.kind === "retry") {
      ctx.deps.log.warn({ passbackId, retryAt: outcome.at }, "score passback: the LMS did not take the score; retrying later");
      return ctx.delayUntil(outcome.at);
    }
    if (outcome.kind === "dead") ctx.deps.log.error({ passbackId }, "score passback is a dead letter; an instructor can retry it");
    else ctx.deps.log.info({ passbackId, outcome: outcome.kind }, "score passback");
    return outcome.kind;
  },

  async recover(db, { graceMs, limit }) {
    const rows = await db.scorePassback.findMany({
      where: { status: "pending", updatedAt: { lt: new Date(Date.now() - graceMs) } },
      orderBy: { updatedAt: "asc" },
      take: limit,
      select: { id: true, updatedAt: true },
    });
    return rows.map((r) => ({
      payload: { passbackId: r.id },
      // Touches updatedAt so one of several outbox loops takes it; its score is left alone.
      take: async () =>
        (
          await db.scorePassback.updateMany({
            where: { id: r.id, status: "pending", updatedAt: r.updatedAt },
            data: { updatedAt: new Date() },
          })
        ).count === 1,
    }));
  },
};
