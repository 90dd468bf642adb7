import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import type { ModelSpec } from "../../../graders/onnx/types.ts";
import type { LoadResult, TarLimits } from "../../catalog/types.ts";
import { loadConfig, type Config } from "../../config.ts";
import type { PreflightOptions, PreflightResult } from "../onnx/preflight.ts";
import type { Task, TaskResult } from "./tasks.ts";

export type { Task, TaskResult } from "./tasks.ts";

/**
 * One pool of worker threads per process for synchronous work that input can make slow or large:
 * non-model graders, problem-set bundle validation and ONNX preflight. A thread has a heap cap
 * (resourceLimits) and every task a wall-clock budget; when either is exceeded piscina terminates
 * that thread (and starts a fresh one), so no upload or answer can hold an event loop or the
 * process's memory. piscina rather than tinypool: it takes resourceLimits and an AbortSignal per
 * task, and aborting a running task terminates its thread.
 */
export type ThreadConfig = Pick<Config, "GRADER_THREADS" | "WORKER_CONCURRENCY" | "GRADER_THREAD_MEMORY_MB" | "GRADER_TIMEOUT_S">;

export interface ThreadSettings {
  threads: number;
  memoryMb: number;
  /** Budget of a task whose caller names none. */
  timeoutMs: number;
  /**
   * A grading worker's pool: every thread starts with the pool and loads mathjs and the NLP model as it boots, so
   * the first grades after a start (an exam's first minute) do not queue behind module loading. The API's pool
   * (bundle and model checks) stays lazy and small.
   */
  preload?: boolean;
}

/**
 * Threads do CPU work, so by default there are no more of them than cores (nor than jobs that could use them):
 * WORKER_CONCURRENCY counts mostly waiting jobs (database, Redis, sandbox children) and may be far higher.
 */
export const threadSettings = (config: ThreadConfig): ThreadSettings => ({
  threads: config.GRADER_THREADS ?? Math.min(config.WORKER_CONCURRENCY, availableParallelism()),
  memoryMb: config.GRADER_THREAD_MEMORY_MB,
  timeoutMs: Math.round(config.GRADER_TIMEOUT_S * 1000),
});

/** The task ran past its wall-clock budget; its thread was terminated. */
export class ThreadTimeout extends Error {
  readonly code = "THREAD_TIMEOUT";
  constructor(readonly ms: number) {
    super(`did not finish within ${ms / 1000} s`);
    this.name = "ThreadTimeout";
  }
}

/** The task's thread ran out of its heap cap and was terminated. */
export class ThreadOutOfMemory extends Error {
  readonly code = "THREAD_OUT_OF_MEMORY";
  constructor(readonly memoryMb: number) {
    super(`needed more than the ${memoryMb} MiB a grading thread may use`);
    this.name = "ThreadOutOfMemory";
  }
}

export interface RunOptions {
  /** Aborting it terminates the task's thread; the run rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Wall-clock budget; default the pool's. */
  timeoutMs?: number;
}

export class ThreadPool {
  private readonly pool: Piscina;
  /** Tasks sent and not yet begun, by id: each starts its budget's clock when its thread says it began. */
  private readonly starting = new Map<number, () => void>();
  private lastTaskId = 0;

  constructor(readonly settings: ThreadSettings) {
    this.pool = new Piscina({
      filename: new URL("./entry.mjs", import.meta.url).href,
      // A thread costs a second or more of module loading (mathjs alone is a thousand files), so one
      // starts with the pool (every one in a grading worker's), more as tasks queue up, and those stay while
      // there is work.
      minThreads: settings.preload ? settings.threads : 1,
      maxThreads: settings.threads,
      workerData: { preload: settings.preload === true },
      idleTimeout: 5 * 60_000,
      resourceLimits: {
        maxOldGenerationSizeMb: settings.memoryMb,
        maxYoungGenerationSizeMb: Math.max(16, Math.round(settings.memoryMb / 8)),
        stackSizeMb: 4,
      },
    });
    // A thread that dies is replaced by piscina; its task has already been rejected.
    this.pool.on("error", () => undefined);
    // A thread says on its own port when it begins a task (tasks.ts): one message, no channel made per task.
    this.pool.on("message", (m: { started?: number }) => {
      const start = m.started !== undefined ? this.starting.get(m.started) : undefined;
      this.starting.delete(m.started!);
      start?.();
    });
  }

  /**
   * Runs `task` in a thread; its budget starts when a thread picks it up (queueing and a thread's boot
   * do not count). Rejects with ThreadTimeout, ThreadOutOfMemory or the caller's abort reason.
   */
  async run<T extends Task>(task: T, opts: RunOptions = {}): Promise<TaskResult<T>> {
    const timeoutMs = opts.timeoutMs ?? this.settings.timeoutMs;
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const id = ++this.lastTaskId;
    this.starting.set(id, () => (timer = setTimeout(() => ac.abort(new ThreadTimeout(timeoutMs)), timeoutMs)));
    const forward = () => ac.abort(opts.signal!.reason);
    if (opts.signal?.aborted) forward();
    else opts.signal?.addEventListener("abort", forward, { once: true });
    try {
      return (await this.pool.run({ ...task, taskId: id }, { signal: ac.signal })) as TaskResult<T>;
    } catch (err) {
      if (ac.signal.aborted) throw ac.signal.reason;
      if ((err as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY") throw new ThreadOutOfMemory(this.settings.memoryMb);
      throw err;
    } finally {
      clearTimeout(timer);
      this.starting.delete(id);
      opts.signal?.removeEventListener("abort", forward);
    }
  }

  /** Resolves once every thread has booted (a grading worker's: with mathjs and the NLP model loaded); how many preloaded. */
  async warm(): Promise<{ threads: number; preloaded: number }> {
    const { threads } = this.settings;
    const arrived = new Int32Array(new SharedArrayBuffer(4));
    const answers = await Promise.all(
      Array.from({ length: threads }, () => this.run({ kind: "warm", arrived, threads }, { timeoutMs: 60_000 })),
    );
    return { threads: new Set(this.threadIds).size, preloaded: answers.filter((a) => a.preloaded).length };
  }

  /** Ids of the threads alive now: one that a budget or the heap cap terminated is gone from the list. */
  get threadIds(): number[] {
    return this.pool.threads.map((t) => t.threadId);
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

let settings: ThreadSettings | undefined;
let shared: ThreadPool | undefined;

/** Sets the shared pool's size, heap cap and default budget; the first call before the pool starts wins. */
export function configureThreads(config: ThreadConfig, opts: { preload?: boolean } = {}): void {
  if (shared) return;
  settings ??= threadSettings(config);
  if (opts.preload) settings.preload = true;
}

/** The process's pool, started on first use (from the environment's settings unless configured). */
export function threadPool(): ThreadPool {
  return (shared ??= new ThreadPool(settings ?? threadSettings(loadConfig())));
}

/** Stops the shared pool's threads (process shutdown); a later threadPool() starts a new one. */
export async function closeThreads(): Promise<void> {
  const pool = shared;
  shared = undefined;
  settings = undefined;
  await pool?.close();
}

/** Tar parsing and loadSet of an uploaded bundle, with every instructor expression and self-check, in a thread. */
export function validateBundleInThread(bytes: Uint8Array, limits: Partial<TarLimits> = {}, opts: RunOptions = {}): Promise<LoadResult> {
  return threadPool().run({ kind: "bundle", bytes, limits }, opts);
}

/**
 * ONNX preflight of an uploaded model in a thread: protobuf decoding and the graph walk stay off the
 * API's event loop, and a model built to make them slow or large costs one thread. Rejects with
 * ThreadTimeout or ThreadOutOfMemory (answer 422: the upload is the cause).
 */
export function preflightInThread(
  bytes: Uint8Array,
  spec: ModelSpec,
  options: PreflightOptions = {},
  opts: RunOptions = {},
): Promise<PreflightResult> {
  return threadPool().run({ kind: "preflight", bytes, spec, options }, opts);
}
