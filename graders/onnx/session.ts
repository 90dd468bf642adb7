import { rejected } from "../result.ts";
import type { GradeInput, GradeResult } from "../types.ts";
import { ModelFault, type ModelRuntime, type ModelSession, type Tensor, type TensorSpec } from "./types.ts";

/** Opens a model, runs `fn`, and always closes the session (a leaked session holds a sandbox child). */
export async function withSession<T>(
  runtime: ModelRuntime,
  model: Uint8Array,
  role: "submission" | "reference",
  fn: (s: ModelSession) => Promise<T>,
): Promise<T> {
  const session = await runtime.open(model, { role });
  try {
    return await fn(session);
  } finally {
    await session.close().catch(() => undefined);
  }
}

/** The model and runtime a model grader needs; their absence is a wiring bug, not a student's fault. */
export function requireModel(input: GradeInput<unknown, unknown>): { model: Uint8Array; runtime: ModelRuntime } {
  if (!input.model || !input.runtime) throw new Error("model grader called without a model or a runtime");
  return { model: input.model, runtime: input.runtime };
}

/**
 * Runs a batch and checks that each expected output exists with the declared rank, fixed dims and
 * dtype, and finite values: a student's model that answers in the wrong shape is told which.
 */
export async function runChecked(
  session: ModelSession,
  feeds: Record<string, Tensor>,
  outputs: readonly Pick<TensorSpec, "name" | "shape" | "dtype">[],
  free: Record<string, number> = {},
): Promise<Record<string, Tensor>> {
  const result = await session.run(feeds);
  for (const spec of outputs) {
    const t = result[spec.name];
    if (!t)
      throw new ModelFault("MODEL_BAD_OUTPUT", `The model has no output named '${spec.name}' (it has: ${Object.keys(result).join(", ")}).`);
    if (t.dtype !== spec.dtype) throw new ModelFault("MODEL_BAD_OUTPUT", `Output '${spec.name}' is ${t.dtype}; expected ${spec.dtype}.`);
    const want = spec.shape.map((d) => (typeof d === "number" ? d : (free[d] ?? -1)));
    const ok = t.dims.length === want.length && want.every((d, i) => d === -1 || d === t.dims[i]);
    if (!ok)
      throw new ModelFault(
        "MODEL_BAD_OUTPUT",
        `Output '${spec.name}' has shape [${t.dims.join(", ")}]; expected [${want.map((d, i) => (d === -1 ? spec.shape[i] : d)).join(", ")}].`,
      );
    if (t.data instanceof Float32Array || t.data instanceof Float64Array)
      for (const v of t.data)
        if (!Number.isFinite(v)) throw new ModelFault("MODEL_BAD_OUTPUT", `Output '${spec.name}' contains NaN or infinite values.`);
  }
  return result;
}

/** A model fault becomes a `rejected` result that says what went wrong; anything else propagates (retry). */
export function faultToResult(points: number, err: unknown, what = "Your model"): GradeResult {
  if (err instanceof ModelFault) return rejected(points, `${what} could not be evaluated (${err.code}): ${err.message}`);
  throw err;
}
