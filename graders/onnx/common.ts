import { budgetSchema, type Tensor } from "./types.ts";

/** What every ONNX grader's config and evaluation share, whichever kit (basic-model, advanced-kit) it builds on. */

/** `budget:` in a config: the given limits over budgetSchema's defaults (prefault parses {} so defaults apply). */
export const budgetField = budgetSchema.prefault({});

/** Any numeric tensor as float64 numbers (int64 through Number: exact below 2^53). */
export function toFloat64(t: Pick<Tensor, "data">): Float64Array {
  return t.data instanceof BigInt64Array ? Float64Array.from(t.data, Number) : Float64Array.from(t.data);
}
