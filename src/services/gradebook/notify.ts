import type { Db } from "../../db.ts";
import type { GradingQueue } from "../../grading/queue.ts";
import { queuePassbacks } from "../../lti/passback.ts";
import { announceGrades } from "../submission-events.ts";

type Logger = { warn(obj: object, msg: string): void };

/**
 * Called after anything that may change students' assignment scores of record: a grade written, an
 * override, a group grade, an extension, a regrade's end. Listeners (LTI score passback, event streams) recompute
 * the score themselves, so calling this when nothing changed is harmless.
 * Never throws: the change that called it is committed already, and a passback problem must not fail it
 * (grading, an override…); the error is logged, and the next change of that student's score sends the latest.
 */
export async function scoresMayHaveChanged(
  deps: { db: Db; queue: GradingQueue; log: Logger },
  assignmentId: string,
  userIds: readonly string[],
  /** lmsLinked false: the caller knows the course has no LTI context, so there is no passback to look up. */
  known: { lmsLinked?: boolean } = {},
): Promise<void> {
  // Event streams (GET /v1/assignments/{id}/events) send a `grade` event; never throws.
  await announceGrades(deps, assignmentId, userIds);
  if (known.lmsLinked === false) return;
  try {
    await queuePassbacks(deps, assignmentId, userIds);
  } catch (err) {
    deps.log.warn({ err, assignmentId, users: userIds.length }, "LTI score passback could not be queued");
  }
}
