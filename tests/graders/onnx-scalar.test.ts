import { describe, expect, it } from "vitest";
import { onnxFunctionGrader } from "../../graders/onnx-function.ts";
import { preflight } from "../../src/grading/onnx/preflight.ts";
import { encodeModel } from "../../src/grading/onnx/schema.ts";
import { localRuntime } from "../helpers/local-runtime.ts";

/** sum(x) over x float32 [N, 4], returned as a scalar [] or, as some exporters write it, [1]. */
function sumModel(outDims: number[]): Uint8Array {
  const tensor = (dims: ({ dim_value: number } | { dim_param: string })[]) => ({ tensor_type: { elem_type: 1, shape: { dim: dims } } });
  const node = [
    { op_type: "ReduceSum", input: ["x"], output: outDims.length ? ["s"] : ["y"], attribute: [{ name: "keepdims", type: 2, i: 0 }] },
  ];
  if (outDims.length) node.push({ op_type: "Reshape", input: ["s", "shape"], output: ["y"], attribute: [] as never });
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: "", version: 13 }],
    graph: {
      name: "sum",
      node,
      initializer: outDims.length ? [{ name: "shape", data_type: 7, dims: [1], int64_data: [1] }] : [],
      input: [{ name: "x", type: tensor([{ dim_param: "N" }, { dim_value: 4 }]) }],
      output: [{ name: "y", type: tensor(outDims.map((d) => ({ dim_value: d }))) }],
    },
  });
}

describe("scalar outputs", () => {
  it("a loss exported as [1] is graded like one exported as []", async () => {
    const reference = sumModel([]);
    const config = onnxFunctionGrader.configSchema.parse({
      reference: "reference.onnx",
      inputs: [{ name: "x", shape: ["N", 4] }],
      outputs: [{ name: "y", shape: [] }],
      cases: 3,
    });
    const spec = onnxFunctionGrader.modelSpec!(config);
    for (const student of [sumModel([]), sumModel([1])]) {
      expect(preflight(student, spec).ok).toBe(true);
      const r = await onnxFunctionGrader.grade({
        config,
        privateData: new Map([["reference.onnx", reference]]),
        answer: { model: { sha256: "0".repeat(64), size: student.byteLength } },
        seed: "s",
        points: 2,
        model: student,
        runtime: localRuntime,
      });
      expect(r).toMatchObject({ status: "graded", score: 2 });
    }
  });
});
