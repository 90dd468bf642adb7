import type { Db } from "../db.ts";
import { ensureLineItem, NoLineItemService, postScore } from "./ags.ts";
import { PlatformHttpError } from "./service-token.ts";

/**
 * Score passback, the sending side: one delivery of one ScorePassback row to the LMS.
 *
 * - Only one delivery of a row talks to the LMS at a time: it holds a transaction-scoped advisory lock while it
 *   posts (a duplicate delivery of the job finds the lock taken and leaves; the holder sends whatever is latest).
 * - The row becomes `sent` only if its score is still the one posted (compare-and-set on updatedAt and the score);
 *   otherwise a newer score arrived in flight, and it is posted at once in the same delivery.
 * - The LMS's answer decides: 2xx sent; 429, 408, 5xx and network errors are retried with exponential backoff
 *   (Retry-After honoured) until `attempts` deliveries; any other 4xx, a refused token or no line item service is
 *   a dead letter at once. The last status and body (truncated) stay on the row for instructors.
 * The one case that can repeat a score is a crash between the LMS's 200 and our commit: the same score is posted
 * again (AGS score posts replace the user's score, so the gradebook shows it once).
 */

export interface SendSettings {
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
}
export type SendOutcome = { kind: "sent" | "dead" | "skipped" | "busy" } | { kind: "retry"; at: Date };

/** The most a Retry-After or backoff may push a delivery out. */
const MAX_DELAY_MS = 3_600_000;
const ROUNDS = 3;
const truncate = (s: string) => (s.length > 2000 ? `${s.slice(0, 2000)}…` : s);

interface Answer {
  status: number | null;
  body: string;
  retryAfterMs: number | null;
  permanent: boolean;
}

const transientStatus = (s: number) => s === 429 || s === 408 || s >= 500;

/** An error on the way to the LMS as an answer; Postgres and programming errors are not answers and propagate. */
function asAnswer(err: unknown): Answer {
  if (err instanceof NoLineItemService) return { status: null, body: err.message, retryAfterMs: null, permanent: true };
  if (err instanceof PlatformHttpError)
    return { status: err.status, body: err.message, retryAfterMs: null, permanent: !transientStatus(err.status) };
  const e = err as Error;
  if (e?.name === "TimeoutError" || e?.name === "AbortError" || (e instanceof TypeError && /fetch failed/i.test(e.message)))
    return {
      status: null,
      body: `network: ${e.message}${e.cause ? ` (${String((e.cause as Error).message ?? e.cause)})` : ""}`,
      retryAfterMs: null,
      permanent: false,
    };
  throw err;
}

export async function deliverPassback(db: Db, passbackId: string, settings: SendSettings): Promise<SendOutcome> {
  const first = await db.scorePassback.findUnique({ where: { id: passbackId } });
  if (!first || first.status !== "pending") return { kind: "skipped" };
  // The line item first, outside the send lock: it takes its own lock per (context, assignment).
  let lineItemUrl: string;
  try {
    lineItemUrl = await ensureLineItem(db, first.contextRowId, first.assignmentId, settings.timeoutMs);
  } catch (err) {
    // null: the score changed meanwhile; the line item is still missing, so come back soon rather than at once.
    return (await recordFailure(db, first, asAnswer(err), settings)) ?? { kind: "retry", at: new Date(Date.now() + settings.backoffMs) };
  }

  return db.$transaction(
    async (tx) => {
      const [lock] = await tx.$queryRaw<
        { locked: boolean }[]
      >`SELECT pg_try_advisory_xact_lock(hashtext(${`lti-send:${passbackId}`})::bigint) AS locked`;
      if (!lock?.locked) return { kind: "busy" } as const;
      for (let round = 0; round < ROUNDS; round++) {
        const row = await tx.scorePassback.findUnique({ where: { id: passbackId }, include: { context: { include: { platform: true } } } });
        if (!row || row.status !== "pending") return { kind: "skipped" } as const;
        const link = await tx.ltiUser.findFirst({
          where: { platformId: row.context.platformId, userId: row.userId },
          orderBy: { createdAt: "asc" },
        });
        let answer: Answer;
        if (row.context.platform.disabledAt)
          answer = { status: null, body: "The LMS platform is disabled; enable it, then retry.", retryAfterMs: null, permanent: true };
        else if (!link)
          answer = {
            status: null,
            body: "The student has no LTI identity on this platform any more.",
            retryAfterMs: null,
            permanent: true,
          };
        else {
          try {
            const res = await postScore(
              db,
              row.context.platform,
              lineItemUrl,
              {
                userId: link.sub,
                scoreGiven: row.scoreGiven,
                scoreMaximum: row.scoreMaximum,
                ...(row.comment ? { comment: row.comment } : {}),
                timestamp: row.updatedAt.toISOString(),
                activityProgress: "Completed",
                gradingProgress: "FullyGraded",
              },
              settings.timeoutMs,
            );
            const ok = res.status >= 200 && res.status < 300;
            answer = { ...res, permanent: !ok && !transientStatus(res.status) };
            if (ok) {
              const { count } = await tx.scorePassback.updateMany({
                where: {
                  id: row.id,
                  status: "pending",
                  updatedAt: row.updatedAt,
                  scoreGiven: row.scoreGiven,
                  scoreMaximum: row.scoreMaximum,
                },
                data: {
                  status: "sent",
                  sentAt: new Date(),
                  attempts: { increment: 1 },
                  lastStatus: res.status,
                  lastResponse: truncate(res.body),
                },
              });
              if (count === 1) return { kind: "sent" } as const;
              continue; // a newer score replaced this one while it was in flight: post that one now
            }
          } catch (err) {
            answer = asAnswer(err);
          }
        }
        const outcome = await recordFailure(tx, row, answer, settings);
        if (outcome) return outcome;
      }
      return { kind: "retry", at: new Date(Date.now() + settings.backoffMs) } as const;
    },
    // Held across the LMS's answers: each round may need a token grant and a score post.
    { timeout: ROUNDS * 2 * settings.timeoutMs + 10_000, maxWait: 10_000 },
  );
}

type Row = { id: string; status: string; updatedAt: Date; scoreGiven: number; scoreMaximum: number; attempts: number };

/**
 * A failed delivery on the row (if its score is still the one tried): dead, or pending with a retry time.
 * Returns null when the score changed meanwhile (the caller tries the new one).
 */
async function recordFailure(db: Pick<Db, "scorePassback">, row: Row, answer: Answer, s: SendSettings): Promise<SendOutcome | null> {
  const attempts = row.attempts + 1;
  const dead = answer.permanent || attempts >= s.attempts;
  const { count } = await db.scorePassback.updateMany({
    where: { id: row.id, status: "pending", updatedAt: row.updatedAt, scoreGiven: row.scoreGiven, scoreMaximum: row.scoreMaximum },
    data: { attempts, lastStatus: answer.status, lastResponse: truncate(answer.body), ...(dead ? { status: "dead" } : {}) },
  });
  if (count === 0) return null;
  if (dead) return { kind: "dead" };
  const backoff = s.backoffMs * 2 ** (attempts - 1);
  return { kind: "retry", at: new Date(Date.now() + Math.min(MAX_DELAY_MS, Math.max(backoff, answer.retryAfterMs ?? 0))) };
}
