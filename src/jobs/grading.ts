import { gradeSubmission, type RunFacts } from "../grading/grade-submission.ts";
import { GRADING_JOB, gradingJobSchema, gradingRetry, jobIdFor, type GradingJob } from "../grading/queue.ts";
import { recoverable, release, takeForRecovery } from "../grading/states.ts";
import { gradingOutcomes } from "../metrics.ts";
import { scoresMayHaveChanged } from "../services/gradebook/notify.ts";
import { announceSubmission } from "../services/submission-events.ts";
import type { JobDeps, JobKind } from "./registry.ts";

/** The LMS gradebook follows (LTI passback); never fails grading, whose grade is committed already. */
async function passScoresOn(deps: JobDeps, submissionId: string, facts: RunFacts): Promise<void> {
  try {
    const { assignmentId, userId } = facts;
    const s =
      assignmentId && userId
        ? { assignmentId, userId }
        : await deps.db.submission.findUnique({ where: { id: submissionId }, select: { assignmentId: true, userId: true } });
    if (s) await scoresMayHaveChanged(deps, s.assignmentId, [s.userId], { lmsLinked: facts.lmsLinked });
  } catch (err) {
    deps.log.warn({ err, submissionId }, "could not tell the gradebook's listeners about a grade");
  }
}

/** Grading one run of one submission: the first job kind. */
export const gradingKind: JobKind<GradingJob> = {
  name: GRADING_JOB,
  schema: gradingJobSchema,
  jobId: jobIdFor,
  retry: gradingRetry,

  async handle(ctx, job) {
    const { log } = ctx.deps;
    try {
      const facts: RunFacts = {};
      const outcome = await gradeSubmission(ctx.deps, job, ctx.attempt, facts);
      // Another worker holds a live lease on the run, or it is backing off: come back when that ends.
      if (typeof outcome === "object") return await ctx.delayUntil(outcome.busyUntil);
      log.info({ ...job, outcome, jobId: ctx.jobId }, "graded");
      // Long-polls and event streams on any API instance learn of the new status (after its commit).
      const { assignmentId, userId, status } = facts;
      await announceSubmission(ctx.deps, job.submissionId, assignmentId && userId && status ? { assignmentId, userId, status } : undefined);
      // Also on "skipped" (a duplicate delivery): the first one may have died between its grade and this call.
      await passScoresOn(ctx.deps, job.submissionId, facts);
      return outcome;
    } catch (err) {
      const { number, last } = ctx.attempt;
      if (err instanceof Error && err.name === "DelayedError") throw err;
      log.warn({ err, ...job, attempt: number, last }, "grading attempt failed");
      gradingOutcomes.inc({ outcome: last ? "failed" : "retried" });
      // The run may have failed for good or gone back to the queue: either is a status change to announce.
      await announceSubmission(ctx.deps, job.submissionId);
      throw err;
    }
  },

  async recover(db, { graceMs, limit }) {
    const rows = await recoverable(db, graceMs, limit);
    return rows.map((r) => ({ payload: { submissionId: r.submissionId, run: r.run }, take: () => takeForRecovery(db, r) }));
  },

  // Only a lease that has passed is released; a paused worker that still holds a live one may yet finish.
  async abandoned(deps, job) {
    await release(deps.db, job, null, "The worker grading this stopped responding; grading again.", 0);
  },
};
