import { preflight } from "../../src/grading/onnx/preflight.ts";
import { budgetSchema, dtypeSchema, type Dim, type TensorSpec } from "./types.ts";

/**
 * What a reference model of the problem folder declares about its outputs, so that a problem may name an
 * output (`outputs: [{name}]`) and leave its dtype and shape to the reference. The reference is read with
 * the same preflight as a student's model (it is an upload too), under limits that only its own size sets.
 */

export interface DeclaredOutput {
  name: string;
  dtype?: string | undefined;
  shape?: readonly Dim[] | undefined;
}

export type SignatureResult = { ok: true; outputs: TensorSpec[] } | { ok: false; index: number; message: string };

/**
 * Fills in each output's dtype and shape from the reference's signature; a dimension must be fixed or a
 * free dimension of the inputs ("N"), since the grader sizes only those. `index` is -1 for the file itself.
 */
export function outputsFromReference(
  bytes: Uint8Array,
  inputs: readonly TensorSpec[],
  outputs: readonly DeclaredOutput[],
  file: string,
): SignatureResult {
  const n = bytes.byteLength;
  const generous = budgetSchema.parse({ maxBytes: n, maxParameters: n, maxNodes: n, maxConstantBytes: n });
  const checked = preflight(bytes, { inputs: [...inputs], outputs: [], budget: generous });
  if (!checked.ok) return { ok: false, index: -1, message: `the reference model ${file} is refused: ${checked.message}` };
  const free = new Set(inputs.flatMap((i) => i.shape.filter((d): d is string => typeof d === "string")));
  const resolved: TensorSpec[] = [];
  for (const [index, o] of outputs.entries()) {
    const fail = (why: string): SignatureResult => ({
      ok: false,
      index,
      message: `${why}; give this output's ${o.shape ? "dtype" : "shape"} in the config`,
    });
    const declared = checked.info.outputs.find((d) => d.name === o.name);
    if (!declared)
      return {
        ok: false,
        index,
        message: `the reference model ${file} has no output '${o.name}' (its outputs: ${checked.info.outputs.map((d) => `'${d.name}'`).join(", ")})`,
      };
    const dtype = o.dtype ?? declared.dtype;
    if (!dtypeSchema.safeParse(dtype).success)
      return fail(`the reference's output '${o.name}' is ${declared.dtype}, which this grader cannot compare`);
    let shape = o.shape;
    if (!shape) {
      if (!declared.shape) return fail(`the reference model declares no shape for its output '${o.name}'`);
      const unknown = declared.shape.findIndex((d) => d === null || (typeof d === "string" && !free.has(d)));
      if (unknown >= 0)
        return fail(
          `the reference's output '${o.name}' has dimension ${unknown} ${declared.shape[unknown] === null ? "unknown" : `'${declared.shape[unknown]}', which no input has`}`,
        );
      shape = declared.shape as Dim[];
    }
    resolved.push({ name: o.name, dtype: dtype as TensorSpec["dtype"], shape: [...shape] });
  }
  return { ok: true, outputs: resolved };
}
