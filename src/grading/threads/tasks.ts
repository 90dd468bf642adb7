import { parentPort } from "node:worker_threads";
import { getGrader } from "../../../graders/index.ts";
import { preloadMath } from "../../../graders/math.ts";
import { preloadNlp } from "../../../graders/text/nlp.ts";
import type { ModelSpec } from "../../../graders/onnx/types.ts";
import type { GradeResult, PrivateData } from "../../../graders/types.ts";
import { parseSetTarGz } from "../../catalog/index.ts";
import type { LoadResult, TarLimits } from "../../catalog/types.ts";
import { preflight, type PreflightOptions, type PreflightResult } from "../onnx/preflight.ts";

/**
 * What runs inside a pool thread: everything synchronous that an upload or a submission can make
 * slow or large (mathjs, regexes, fits, tar and YAML parsing, protobuf decoding). Tasks and results
 * are structured-cloned, so they carry plain data only (Maps of Uint8Array are fine).
 */
export type Task =
  | {
      kind: "grade";
      graderType: string;
      config: unknown;
      privateData: PrivateData;
      answer: unknown;
      seed: string;
      points: number;
    }
  | { kind: "bundle"; bytes: Uint8Array; limits: Partial<TarLimits> }
  | { kind: "preflight"; bytes: Uint8Array; spec: ModelSpec; options: PreflightOptions }
  /** Held until `threads` threads hold one each (a shared counter): ThreadPool.warm. */
  | { kind: "warm"; arrived: Int32Array; threads: number };

export type TaskResult<T extends Task> = T extends { kind: "grade" }
  ? GradeResult
  : T extends { kind: "bundle" }
    ? LoadResult
    : T extends { kind: "warm" }
      ? { preloaded: boolean }
      : PreflightResult;

/** A grading worker's threads load what graders build on first use (mathjs, the NLP model) as they boot. */
let preloaded = false;
export function preload(): void {
  preloadMath();
  preloadNlp();
  preloaded = true;
}

/**
 * The pool is told (on this thread's own port, `{ started: taskId }`) that the task left the queue and began here,
 * which is when its budget starts: a thread that is still booting (about a second of module loading after a
 * terminated one) or busy with another task must not eat into it.
 */
export async function runTask({
  taskId,
  ...task
}: Task & { taskId?: number }): Promise<GradeResult | LoadResult | PreflightResult | { preloaded: boolean }> {
  if (taskId !== undefined) parentPort?.postMessage({ started: taskId });
  switch (task.kind) {
    case "grade": {
      const grader = getGrader(task.graderType);
      if (!grader) throw new Error(`unknown grader type "${task.graderType}"`);
      if (grader.modelSpec) throw new Error(`the ${task.graderType} grader runs models: it does not run in a thread`);
      return grader.grade({
        config: task.config,
        privateData: task.privateData,
        answer: task.answer,
        seed: task.seed,
        points: task.points,
      });
    }
    case "bundle":
      return parseSetTarGz(task.bytes, task.limits);
    case "preflight":
      return preflight(task.bytes, task.spec, task.options);
    case "warm": {
      // This thread has booted (its module, preload included, ran before any task). Waiting here until every
      // thread has one keeps a quick thread from taking a second warm task while another is still booting.
      Atomics.add(task.arrived, 0, 1);
      Atomics.notify(task.arrived, 0);
      const until = Date.now() + 30_000;
      for (let n = Atomics.load(task.arrived, 0); n < task.threads && Date.now() < until; n = Atomics.load(task.arrived, 0))
        Atomics.wait(task.arrived, 0, n, 100);
      return { preloaded };
    }
  }
}
