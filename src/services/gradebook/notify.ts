import type { Db } from "../../db.ts";
import type { GradingQueue } from "../../grading/queue.ts";

type Logger = { warn(obj: object, msg: string): void };

/**
 * Called after anything that may change students' assignment scores of record: a grade written, an
 * override, a group grade, an extension, a regrade's end. Listeners (LTI score passback) recompute
 * the score themselves, so calling this when nothing changed is harmless.
 */
export async function scoresMayHaveChanged(
  deps: { db: Db; queue: GradingQueue; log: Logger },
  assignmentId: string,
  userIds: readonly string[],
): Promise<void> {
  void deps;
  void assignmentId;
  void userIds;
}
