import { Worker, type Job } from "bullmq";
import type { Config } from "../config.ts";
import type { Db } from "../db.ts";
import { gradingOutcomes } from "../metrics.ts";
import type { ProblemSetService } from "../services/problem-sets.ts";
import { gradeSubmission, markFailed } from "./grade-submission.ts";
import { createModelRuntime, preflightOptions, type ModelRuntimeConfig, type SandboxRuntime } from "./model-runtime.ts";
import { gradingJobSchema, QUEUE_NAME, redisConnection, type GradingJob } from "./queue.ts";
import { configureThreads, threadPool, type ThreadConfig } from "./threads/index.ts";

type WorkerConfig = Pick<
  Config,
  "REDIS_URL" | "QUEUE_PREFIX" | "WORKER_CONCURRENCY" | "GRADING_ATTEMPTS" | "GRADER_TIMEOUT_S" | "GRADING_LOCK_MS"
> &
  ModelRuntimeConfig &
  ThreadConfig;
type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

export function startGradingWorker(config: WorkerConfig, db: Db, problemSets: ProblemSetService, log: Logger): Worker<GradingJob> {
  // One sandbox pool per worker process, started when the first model problem arrives.
  let runtime: SandboxRuntime | undefined;
  const modelRuntime = () => (runtime ??= createModelRuntime(config, log));
  // One pool per process, shared with the API's uploads when both run in one process.
  configureThreads(config);
  const deps = {
    db,
    problemSets,
    modelRuntime,
    preflight: preflightOptions(config),
    maxClaims: config.GRADING_ATTEMPTS * 2,
    timeoutMs: config.GRADER_TIMEOUT_S * 1000,
    threads: threadPool(),
  };
  const worker = new Worker<GradingJob>(
    QUEUE_NAME,
    async (job: Job<GradingJob>) => {
      const data = gradingJobSchema.parse(job.data);
      try {
        const outcome = await gradeSubmission(deps, data);
        log.info({ ...data, outcome, jobId: job.id }, "graded");
        return outcome;
      } catch (err) {
        const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        log.warn({ err, ...data, attempt: job.attemptsMade + 1, last }, "grading attempt failed");
        gradingOutcomes.inc({ outcome: last ? "failed" : "retried" });
        if (last)
          await markFailed(db, data, `Grading failed after ${job.attemptsMade + 1} attempts: ${(err as Error).message}`, "GRADING_FAILED");
        throw err;
      }
    },
    {
      connection: redisConnection(config),
      prefix: config.QUEUE_PREFIX,
      concurrency: config.WORKER_CONCURRENCY,
      lockDuration: config.GRADING_LOCK_MS,
      stalledInterval: config.GRADING_LOCK_MS,
      maxStalledCount: 2,
    },
  );
  worker.on("error", (err) => log.error({ err }, "grading worker error"));
  worker.on("closed", () => void runtime?.close());
  return worker;
}
