import { DelayedError, Job, UnrecoverableError, Worker } from "bullmq";
import type { Config } from "../config.ts";
import type { Db } from "../db.ts";
import { assertRegistry, findKind, JOB_KINDS, type AnyJobKind, type JobContext, type JobDeps } from "../jobs/registry.ts";
import type { ProblemSetService } from "../services/problem-sets.ts";
import { Semaphore } from "../lib/semaphore.ts";
import { createModelRuntime, modelGradeSlots, preflightOptions, type ModelRuntimeConfig, type SandboxRuntime } from "./model-runtime.ts";
import { coalescedRunWrites } from "./run-writes.ts";
import { backoffAfter, QUEUE_NAME, redisConnection, type GradingQueue } from "./queue.ts";
import { configureThreads, threadPool, type ThreadConfig } from "./threads/index.ts";

type WorkerConfig = Pick<
  Config,
  "REDIS_URL" | "QUEUE_PREFIX" | "WORKER_CONCURRENCY" | "GRADING_ATTEMPTS" | "GRADING_BACKOFF_MS" | "GRADER_TIMEOUT_S" | "GRADING_LOCK_MS"
> &
  ModelRuntimeConfig &
  ThreadConfig;
type Logger = JobDeps["log"];

/**
 * The worker of every job kind (src/jobs/registry.ts): it dispatches on the job's name, refuses names it
 * does not know (failed at once, no retries: a newer API than this worker, or a typo), and validates
 * each payload with its kind's schema before the handler sees it.
 */
export function startGradingWorker(
  config: WorkerConfig,
  { db, problemSets, queue }: { db: Db; problemSets: ProblemSetService; queue: GradingQueue },
  log: Logger,
  kinds: readonly AnyJobKind[] = JOB_KINDS,
): Worker {
  assertRegistry(kinds);
  // One sandbox pool per worker process, started when the first model problem arrives.
  let runtime: SandboxRuntime | undefined;
  const modelRuntime = () => (runtime ??= createModelRuntime(config, log));
  // One pool per process, shared with the API's uploads when both run in one process.
  configureThreads(config);
  const deps: JobDeps = {
    db,
    problemSets,
    modelRuntime,
    preflight: preflightOptions(config),
    maxClaims: config.GRADING_ATTEMPTS * 2,
    leaseMs: config.GRADING_LOCK_MS,
    timeoutMs: config.GRADER_TIMEOUT_S * 1000,
    threads: threadPool(),
    modelSlots: new Semaphore(modelGradeSlots(config)),
    runWrites: coalescedRunWrites(db, config.WORKER_CONCURRENCY),
    log,
    queue,
  };
  const worker: Worker = new Worker(
    QUEUE_NAME,
    async (job: Job, token?: string) => {
      const kind = findKind(job.name, kinds);
      if (!kind) {
        log.error({ jobId: job.id, name: job.name }, "refused a job of an unknown kind");
        throw new UnrecoverableError(`Unknown job kind '${job.name}'; known: ${kinds.map((k) => k.name).join(", ")}.`);
      }
      const payload = kind.schema.safeParse(job.data);
      if (!payload.success) {
        log.error({ jobId: job.id, name: job.name, issues: payload.error.issues }, "refused a job whose payload is not its kind's");
        throw new UnrecoverableError(`Job '${job.id}' of kind '${job.name}' has an invalid payload.`);
      }
      const number = job.attemptsMade + 1;
      const attempts = job.opts.attempts ?? 1;
      const ctx: JobContext = {
        deps,
        jobId: job.id,
        attempt: { number, last: number >= attempts, backoffMs: backoffAfter({ attempts, backoffMs: backoffDelay(job) }, number) },
        async delayUntil(at) {
          await job.moveToDelayed(Math.max(at.getTime(), Date.now()) + 20, token);
          throw new DelayedError();
        },
      };
      return kind.handle(ctx, payload.data);
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
  // A stalled job's worker died (or froze) holding it: let its kind free what that worker held, if it safely can.
  worker.on("stalled", (jobId) => {
    void (async () => {
      const job = await Job.fromId(worker, jobId);
      const kind = job && findKind(job.name, kinds);
      const payload = kind?.schema.safeParse(job!.data);
      if (kind?.abandoned && payload?.success) await kind.abandoned(deps, payload.data);
      log.warn({ jobId, name: job?.name }, "job stalled: its worker stopped responding");
    })().catch((err: unknown) => log.error({ err, jobId }, "handling a stalled job failed; the outbox will recover it"));
  });
  worker.on("error", (err) => log.error({ err }, "grading worker error"));
  worker.on("closed", () => void runtime?.close());
  return worker;
}

const backoffDelay = (job: Job): number => {
  const b = job.opts.backoff;
  return typeof b === "number" ? b : (b?.delay ?? 0);
};
