import { Queue, type ConnectionOptions } from "bullmq";
import { z } from "zod";
import type { Config } from "../config.ts";

export const QUEUE_NAME = "grading";

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

export type GradingQueue = Queue<GradingJob>;

export function createGradingQueue(
  config: Pick<Config, "REDIS_URL" | "QUEUE_PREFIX" | "GRADING_ATTEMPTS" | "GRADING_BACKOFF_MS">,
): GradingQueue {
  return new Queue<GradingJob>(QUEUE_NAME, {
    connection: redisConnection(config),
    prefix: config.QUEUE_PREFIX,
    defaultJobOptions: {
      attempts: config.GRADING_ATTEMPTS,
      backoff: { type: "exponential", delay: config.GRADING_BACKOFF_MS },
      // Postgres keeps the outcome; Redis only needs recent jobs for debugging.
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 86_400, count: 1000 },
    },
  });
}

export async function enqueueGrading(queue: GradingQueue, job: GradingJob): Promise<void> {
  await queue.add("grade", job, { jobId: jobIdFor(job) });
}
