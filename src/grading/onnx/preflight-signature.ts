import type { TensorSpec } from "../../../graders/onnx/types.ts";
import { num, type ValueInfoProto } from "./schema.ts";
import { cap, refuse, show } from "./preflight-graph.ts";
import type { ModelTensorInfo } from "./preflight.ts";

/**
 * The signature half of preflight: does the model take and return the tensors the problem feeds and reads, by
 * name, element type and shape; and how a declared input or output is described back (ModelTensorInfo).
 */

export function matchSignature(kind: "input" | "output", model: ValueInfoProto[], spec: TensorSpec[], varied?: Set<string>) {
  const code = kind === "input" ? "INPUT_MISMATCH" : "OUTPUT_MISMATCH";
  const Kind = cap(kind);
  const names = model.map((v) => `'${show(v.name)}'`).join(", ") || "none";
  const wanted = spec.map((s) => `'${s.name}' ${s.dtype} [${s.shape.join(", ")}]`).join(", ") || "none";
  for (const s of spec) {
    const m = model.find((v) => v.name === s.name);
    if (!m)
      refuse(
        code,
        `The model has no ${kind} named '${s.name}' (its ${kind}s: ${names}); this problem expects ${wanted}. Name it at export: torch.onnx.export(..., ${kind}_names=[...]).`,
      );
    const tensor = m!.type?.value === "tensor_type" ? m!.type.tensor_type : null;
    if (!tensor)
      refuse(code, `${Kind} '${s.name}' is not a plain tensor; this problem expects a ${s.dtype} tensor of shape [${s.shape.join(", ")}].`);
    const dtype = typeName(tensor!.elem_type);
    if (dtype !== s.dtype)
      refuse(
        code,
        `${Kind} '${s.name}' has element type ${dtype}; this problem expects ${s.dtype}. Convert it in the model (e.g. .float()) before exporting.`,
      );
    const dims = tensor!.shape?.dim;
    if (!dims) continue; // no declared shape: the model accepts any
    // A scalar may be declared [] or [1]: exporters differ, and both hold one value.
    if (s.shape.length === 0 && dims.length === 1 && (fixedDim(dims[0]!) ?? 1) === 1) continue;
    if (dims.length !== s.shape.length)
      refuse(
        code,
        `${Kind} '${s.name}' has ${dims.length} dimensions [${dims.map(dimText).join(", ")}]; this problem expects ${s.shape.length}: [${s.shape.join(", ")}].`,
      );
    for (const [i, d] of dims.entries()) {
      const want = s.shape[i]!;
      const fixed = fixedDim(d);
      if (typeof want === "number" && fixed !== null && fixed !== want)
        refuse(
          code,
          `${Kind} '${s.name}' has size ${fixed} in dimension ${i}; this problem expects ${want} (shape [${s.shape.join(", ")}]).`,
        );
      if (typeof want === "string" && fixed !== null && (!varied || varied.has(want)))
        refuse(
          code,
          `${Kind} '${s.name}' fixes dimension ${i} to ${fixed}, but this problem varies it ('${want}', e.g. the batch size). Export it as a dynamic axis: torch.onnx.export(..., dynamic_axes={'${s.name}': {${i}: '${want}'}}).`,
        );
    }
  }
  if (kind === "input") {
    const extra = model.filter((v) => !spec.some((s) => s.name === v.name));
    if (extra.length)
      refuse(
        code,
        `The model has input(s) ${extra.map((v) => `'${show(v.name)}'`).join(", ")} that this problem does not feed; it must take exactly ${wanted}.`,
      );
  }
}

type Dim = NonNullable<NonNullable<NonNullable<ValueInfoProto["type"]>["tensor_type"]>["shape"]>["dim"][number];
/** A dim is free when symbolic, unset, or negative (some exporters write -1); 0 and up are fixed. */
const fixedDim = (d: Dim): number | null => (d.value === "dim_value" && num(d.dim_value) >= 0 ? num(d.dim_value) : null);
const dimText = (d: Dim): string => String(fixedDim(d) ?? (d.value === "dim_param" ? show(d.dim_param) : "?"));

export function describe(v: ValueInfoProto): ModelTensorInfo {
  const t = v.type?.value === "tensor_type" ? v.type.tensor_type : null;
  const dims = t?.shape?.dim;
  return {
    name: v.name,
    dtype: t ? typeName(t.elem_type) : (v.type?.value?.replace(/_type$/, "") ?? "unknown"),
    shape: dims ? dims.map((d) => fixedDim(d) ?? (d.value === "dim_param" ? d.dim_param : null)) : null,
  };
}

const TYPE_NAMES = [
  "undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool", "float16", "float64", "uint32", "uint64",
  "complex64", "complex128", "bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "uint4", "int4", "float4e2m1",
  "float8e8m0", "uint2", "int2",
]; // prettier-ignore
const typeName = (t: number): string => TYPE_NAMES[t] ?? `type ${t}`;
