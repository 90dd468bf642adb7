import { availableParallelism } from "node:os";
import type { Config } from "../config.ts";
import type { PreflightOptions } from "./onnx/preflight.ts";
import { planSandbox, type SandboxPlan } from "./onnx/isolation.ts";
import { createSandboxRuntime, type SandboxLogger, type SandboxRuntime } from "./onnx/runtime.ts";

export type { SandboxRuntime };
export { SandboxUnavailable } from "./onnx/isolation.ts";

export type ModelRuntimeConfig = Pick<
  Config,
  | "GRADER_EXECUTION_PROVIDERS"
  | "GRADER_INTRA_OP_THREADS"
  | "GRADER_INTER_OP_THREADS"
  | "SANDBOX_POOL_SIZE"
  | "SANDBOX_RECYCLE_AFTER"
  | "SANDBOX_MEMORY_MB"
  | "SANDBOX_ALLOW_UNCAPPED"
  | "SANDBOX_USER"
  | "SANDBOX_MAX_PROCS"
  | "MODEL_TIMEOUT_S"
  | "WORKER_CONCURRENCY"
  | "ONNX_ALLOWED_DOMAINS"
>;

/** What preflight allows, from config: the same for the API's check and the worker's. */
export const preflightOptions = (config: Pick<Config, "ONNX_ALLOWED_DOMAINS">): PreflightOptions => ({
  allowedDomains: config.ONNX_ALLOWED_DOMAINS,
});

const isolationOptions = (config: ModelRuntimeConfig) => ({
  memoryBytes: config.SANDBOX_MEMORY_MB * 1024 * 1024,
  maxProcs: config.SANDBOX_MAX_PROCS,
  user: config.SANDBOX_USER,
  allowUncapped: config.SANDBOX_ALLOW_UNCAPPED,
});

/**
 * What a worker checks before it starts: how sandbox children will run on this host. Throws
 * SandboxUnavailable (one line for the operator) when they cannot run capped, e.g. without prlimit.
 */
export const checkSandbox = (config: ModelRuntimeConfig): SandboxPlan => planSandbox(isolationOptions(config));

/**
 * Sandbox children per worker process: two per model grade that may run at once (a grade may hold a student's
 * session and a reference session), and model grades at once default to the cores, not WORKER_CONCURRENCY, which
 * counts mostly I/O-bound answer grades. On a GPU host one worker process per GPU shares that GPU among them.
 */
export const sandboxPoolSize = (config: Pick<Config, "SANDBOX_POOL_SIZE" | "WORKER_CONCURRENCY">): number =>
  config.SANDBOX_POOL_SIZE ?? 2 * Math.min(config.WORKER_CONCURRENCY, availableParallelism());

/** Model grades one worker process runs at once; the rest wait for a slot before their budget starts. */
export const modelGradeSlots = (config: Pick<Config, "SANDBOX_POOL_SIZE" | "WORKER_CONCURRENCY">): number =>
  Math.max(1, Math.floor(sandboxPoolSize(config) / 2));

/** The sandboxed child-process pool where every model (student's and reference) runs. */
export function createModelRuntime(config: ModelRuntimeConfig, logger: SandboxLogger): SandboxRuntime {
  const timeoutMs = Math.round(config.MODEL_TIMEOUT_S * 1000);
  return createSandboxRuntime({
    ...isolationOptions(config),
    providers: config.GRADER_EXECUTION_PROVIDERS,
    size: sandboxPoolSize(config),
    recycleAfter: config.SANDBOX_RECYCLE_AFTER,
    loadTimeoutMs: timeoutMs,
    runTimeoutMs: timeoutMs,
    intraOpNumThreads: config.GRADER_INTRA_OP_THREADS,
    interOpNumThreads: config.GRADER_INTER_OP_THREADS,
    logger,
  });
}
