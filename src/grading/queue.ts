import { Queue, type ConnectionOptions } from "bullmq";
import { z } from "zod";
import type { Config } from "../config.ts";

export const QUEUE_NAME = "grading";
/** The grading job kind's name (src/jobs/grading.ts). */
export const GRADING_JOB = "grade";

export const gradingJobSchema = z.object({ submissionId: z.string().uuid(), run: z.number().int().min(1) });
export type GradingJob = z.infer<typeof gradingJobSchema>;

/** Job id = submission id for the first run, so a duplicate enqueue of the same run is a no-op in Redis. */
export const jobIdFor = ({ submissionId, run }: GradingJob): string => (run === 1 ? submissionId : `${submissionId}-run${run}`);

export function redisConnection(config: Pick<Config, "REDIS_URL">): ConnectionOptions {
  const url = new URL(config.REDIS_URL);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    username: url.username || undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    tls: url.protocol === "rediss:" ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}

/** One queue carries every job kind (src/jobs/registry.ts); the job's name says which. */
export type GradingQueue = Queue;
export type QueueConfig = Pick<Config, "REDIS_URL" | "QUEUE_PREFIX" | "GRADING_ATTEMPTS" | "GRADING_BACKOFF_MS"> &
  // Job kinds read their own policies from the queue's settings (LTI passback: src/jobs/lti-passback.ts).
  Partial<Pick<Config, "LTI_PASSBACK_ATTEMPTS" | "LTI_PASSBACK_BACKOFF_MS" | "LTI_HTTP_TIMEOUT_MS" | "LTI_ROSTER_MAX_PAGES">>;

/** Attempts and the first backoff of a job kind; later retries double it (exponential). */
export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}
export const gradingRetry = (c: Pick<Config, "GRADING_ATTEMPTS" | "GRADING_BACKOFF_MS">): RetryPolicy => ({
  attempts: c.GRADING_ATTEMPTS,
  backoffMs: c.GRADING_BACKOFF_MS,
});

/** The settings a queue was made with, so a job kind's retry policy can be read from them when it is enqueued. */
const configs = new WeakMap<Queue, QueueConfig>();
export const queueConfig = (queue: Queue): QueueConfig | undefined => configs.get(queue);

export function createGradingQueue(config: QueueConfig): GradingQueue {
  const queue = new Queue(QUEUE_NAME, {
    // Commands issued in the same tick (concurrent requests' queue.add, event publishes) leave in one write: a socket
    // write was a large share of the API's busy time under load. Only here: a Worker's connection blocks.
    connection: { ...redisConnection(config), enableAutoPipelining: true },
    prefix: config.QUEUE_PREFIX,
    defaultJobOptions: {
      ...retryOptions(gradingRetry(config)),
      // Postgres keeps the outcome; Redis only needs recent jobs for debugging.
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 86_400, count: 1000 },
    },
  });
  configs.set(queue, config);
  return queue;
}

export const retryOptions = (p: RetryPolicy) => ({ attempts: p.attempts, backoff: { type: "exponential", delay: p.backoffMs } });

/** The delay BullMQ waits before attempt `attempt + 1` of a job with this policy (exponential). */
export const backoffAfter = (p: RetryPolicy, attempt: number): number => p.backoffMs * 2 ** Math.max(0, attempt - 1);

export async function enqueueGrading(queue: GradingQueue, job: GradingJob): Promise<void> {
  const config = queueConfig(queue);
  await queue.add(GRADING_JOB, gradingJobSchema.parse(job), {
    jobId: jobIdFor(job),
    ...(config ? retryOptions(gradingRetry(config)) : {}),
  });
}
