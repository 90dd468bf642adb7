import type { Db } from "../db.ts";
import { queueConfig, type GradingQueue } from "../grading/queue.ts";
import { publishEvent, type HubEvent, type Publisher } from "../lib/event-hub.ts";

type Logger = { warn(obj: object, msg: string): void };

/**
 * Tells every API instance that a submission's status or a score of record may have changed (long-polls and
 * Server-Sent Events wait on these). Published on the queue's own Redis connection, so a worker opens none for it.
 * Never throws: the change is committed already, and a client that misses an event still sees it on its next read.
 */
async function publish(queue: GradingQueue, event: HubEvent): Promise<void> {
  const client = (await queue.getBackend().client) as unknown as Publisher;
  await publishEvent(client, queueConfig(queue)?.QUEUE_PREFIX ?? "bull", event);
}

/**
 * After a status change of a submission has committed (a grading run finished, failed or went back to the queue).
 * The event carries ids and the status only (one primary-key read, or none when the caller knows the row); the API
 * instances that have listeners read the rest (score, problem) themselves, once per event.
 */
export async function announceSubmission(
  deps: { db: Db; queue: GradingQueue; log: Logger },
  submissionId: string,
  known?: { assignmentId: string; userId: string; status: string },
): Promise<void> {
  try {
    const s =
      known ??
      (await deps.db.submission.findUnique({ where: { id: submissionId }, select: { assignmentId: true, userId: true, status: true } }));
    if (s)
      await publish(deps.queue, { type: "submission", id: submissionId, assignmentId: s.assignmentId, userId: s.userId, status: s.status });
  } catch (err) {
    deps.log.warn({ err, submissionId }, "could not announce a submission's change");
  }
}

/** From notify.ts: these students' scores of record on the assignment may have changed. */
export async function announceGrades(deps: { queue: GradingQueue; log: Logger }, assignmentId: string, userIds: readonly string[]) {
  if (userIds.length === 0) return;
  try {
    await publish(deps.queue, { type: "grade", assignmentId, userIds: [...userIds] });
  } catch (err) {
    deps.log.warn({ err, assignmentId }, "could not announce a grade change");
  }
}
