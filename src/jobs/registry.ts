import type { z } from "zod";
import type { Db } from "../db.ts";
import type { GradeDeps } from "../grading/grade-submission.ts";
import { queueConfig, retryOptions, type GradingQueue, type QueueConfig, type RetryPolicy } from "../grading/queue.ts";
import { gradingKind } from "./grading.ts";
import { ltiPassbackKind } from "./lti-passback.ts";
import { regradeKind } from "./regrade.ts";
import { rosterSyncKind } from "./roster-sync.ts";

/**
 * Every kind of durable work, declared once. Postgres is the source of truth for each: a kind's
 * `recover` finds the rows whose job Redis may have lost, and the outbox loop (outbox.ts) enqueues
 * them again. Payloads carry ids only; the handler reads the rest from Postgres. See README.md here.
 */

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

/** What handlers get from the worker process. A kind that needs more (an HTTP client, a service) adds it here and in worker.ts. */
export interface JobDeps extends GradeDeps {
  log: Logger;
  /** To enqueue follow-up work (a regrade's grading jobs, a score passback). */
  queue: GradingQueue;
}

export interface JobContext {
  deps: JobDeps;
  jobId: string | undefined;
  /** This delivery: 1-based attempt number, whether BullMQ will retry a throw, and the backoff before that retry. */
  attempt: { number: number; last: boolean; backoffMs: number };
  /** Puts the job back, untouched, until `at` (e.g. someone else's live lease); does not count as an attempt. */
  delayUntil(at: Date): Promise<never>;
}

/** One row found by `recover`: its payload, and the compare-and-set that lets one of several outbox loops take it. */
export interface Recovered<P> {
  payload: P;
  take(): Promise<boolean>;
}

export interface JobKind<P> {
  /** The BullMQ job name; unique across kinds. */
  name: string;
  /** Ids only: a payload is validated on enqueue and again on delivery. */
  schema: z.ZodType<P>;
  /** Deterministic, so enqueuing the same work twice is one job in Redis. */
  jobId(payload: P): string;
  retry(config: QueueConfig): RetryPolicy;
  /** Runs the work. Throwing retries per `retry`; the handler must leave Postgres right on its last attempt. */
  handle(ctx: JobContext, payload: P): Promise<unknown>;
  /** The outbox query: work in Postgres that should have a job and may not (oldest first, at most `limit`). */
  recover(db: Db, opts: { graceMs: number; limit: number }): Promise<Recovered<P>[]>;
  /** BullMQ found the job's worker dead (stalled lock): free what that worker held, if it is safe to. */
  abandoned?(deps: JobDeps, payload: P): Promise<void>;
}

// A registry of heterogeneous kinds: each entry is checked against JobKind<P> where it is defined.
export type AnyJobKind = JobKind<any>;

/** Register a new kind by adding it here. */
export const JOB_KINDS: readonly AnyJobKind[] = [gradingKind, regradeKind, ltiPassbackKind, rosterSyncKind];

export function findKind(name: string, kinds: readonly AnyJobKind[] = JOB_KINDS): AnyJobKind | undefined {
  return kinds.find((k) => k.name === name);
}

/** Run at worker boot: a kind without a handler, schema or outbox query, or a name used twice, stops the worker. */
export function assertRegistry(kinds: readonly AnyJobKind[] = JOB_KINDS): void {
  const seen = new Set<string>();
  for (const k of kinds) {
    const problems = [
      typeof k.name !== "string" || !k.name ? "no name" : null,
      seen.has(k.name) ? "a name another kind has" : null,
      typeof k.handle !== "function" ? "no handler" : null,
      typeof k.schema?.safeParse !== "function" ? "no payload schema" : null,
      typeof k.jobId !== "function" ? "no jobId" : null,
      typeof k.retry !== "function" ? "no retry policy" : null,
      typeof k.recover !== "function" ? "no outbox query (recover)" : null,
    ].filter(Boolean);
    if (problems.length) throw new Error(`Job kind '${String(k.name)}' is not runnable: ${problems.join(", ")}.`);
    seen.add(k.name);
  }
}

/** Enqueues work of a kind with its retry policy; the payload is validated first, so only ids of the right shape reach Redis. */
export async function enqueue<P>(queue: GradingQueue, kind: JobKind<P>, payload: P): Promise<void> {
  const data = kind.schema.parse(payload);
  const config = queueConfig(queue);
  await queue.add(kind.name, data, { jobId: kind.jobId(data), ...(config ? retryOptions(kind.retry(config)) : {}) });
}
