import type { MessagePort } from "node:worker_threads";
import { getGrader } from "../../../graders/index.ts";
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
  | { kind: "preflight"; bytes: Uint8Array; spec: ModelSpec; options: PreflightOptions };

export type TaskResult<T extends Task> = T extends { kind: "grade" }
  ? GradeResult
  : T extends { kind: "bundle" }
    ? LoadResult
    : PreflightResult;

/**
 * `started` tells the pool the task left the queue and began here, which is when its budget starts:
 * a thread that is still booting (about a second of module loading after a terminated one) or busy
 * with another task must not eat into it.
 */
export async function runTask({ started, ...task }: Task & { started?: MessagePort }): Promise<GradeResult | LoadResult | PreflightResult> {
  started?.postMessage("started");
  started?.close();
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
  }
}
