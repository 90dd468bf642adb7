import { z } from "zod";
import { createItems, progress, tryFinish } from "../services/gradebook/regrade-run.ts";
import type { JobKind } from "./registry.ts";

const payload = z.object({ regradeId: z.string().uuid() });
export type RegradeJob = z.infer<typeof payload>;

/** Submissions superseded per transaction: small enough for a short transaction, large enough to move fast. */
export const REGRADE_CHUNK = 100;
/** How often the job looks whether the grading runs it started have all finished. */
export const REGRADE_POLL_MS = 1000;

/**
 * A batch regrade (one submission, a problem, a student, a whole assignment). The handler supersedes
 * the scope's submissions in chunks (each chunk one transaction of runs and items, regrade-run.ts), then
 * stays as a delayed job that looks every REGRADE_POLL_MS whether the runs have finished and, when
 * they have, writes the report. Re-delaying (ctx.delayUntil) costs no attempt, and each look refreshes
 * the row's updatedAt, so the outbox leaves a live regrade alone and finds one whose job Redis lost
 * (at any step: creating items or waiting for them).
 */
export const regradeKind: JobKind<RegradeJob> = {
  name: "regrade",
  schema: payload,
  jobId: (p) => `regrade-${p.regradeId}`,
  retry: (c) => ({ attempts: Math.max(3, c.GRADING_ATTEMPTS), backoffMs: Math.max(1000, c.GRADING_BACKOFF_MS) }),

  async handle(ctx, { regradeId }) {
    const { db } = ctx.deps;
    const r = await db.regrade.findUnique({ where: { id: regradeId } });
    if (!r || r.status === "done") return "skipped"; // deleted with its assignment, or a duplicate delivery
    while ((await createItems(ctx.deps, regradeId, REGRADE_CHUNK)) > 0);
    // Every item exists: the count of items is the total from now on (a submission deleted meanwhile has none).
    const { items } = await progress(db, regradeId);
    await db.regrade.updateMany({
      where: { id: regradeId, status: { not: "done" } },
      data: { total: items, status: "running", updatedAt: new Date() },
    });
    if (await tryFinish(ctx.deps, regradeId)) return "done";
    return ctx.delayUntil(new Date(Date.now() + REGRADE_POLL_MS));
  },

  async recover(db, { graceMs, limit }) {
    const rows = await db.regrade.findMany({
      where: { status: { in: ["pending", "running"] }, updatedAt: { lt: new Date(Date.now() - graceMs) } },
      orderBy: { updatedAt: "asc" },
      take: limit,
      select: { id: true, updatedAt: true },
    });
    return rows.map((r) => ({
      payload: { regradeId: r.id },
      take: async () =>
        (await db.regrade.updateMany({ where: { id: r.id, updatedAt: r.updatedAt }, data: { updatedAt: new Date() } })).count === 1,
    }));
  },
};
