import { z } from "zod";
import { budgetSchema, type ModelSpec } from "../../../graders/onnx/types.ts";
import { decodeModel, num, scanWire, WireLimit, type FunctionProto, type ModelProto } from "./schema.ts";
import { cap, countNodes, funcKey, norm, Refusal, refuse, Scope, show, size, Walker } from "./preflight-graph.ts";
import { checkOperator } from "./preflight-operators.ts";
import { shapeHook } from "./preflight-shapes.ts";
import { describe, matchSignature } from "./preflight-signature.ts";

/**
 * Static checks of an uploaded model before any onnxruntime session exists: is it ONNX, is it
 * self-contained (external data reads files next to the process), does it use only allowed operator
 * domains and opsets, does it fit the problem's signature and budget. Messages are for the student.
 *
 * This file holds the options, the result types, the public preflight() and the top-level order of checks
 * (decoding, IR and opset ranges, domains and operators, budgets, signature); the graph walk is in
 * preflight-graph.ts, the shape and constant propagation that sizes tensors and loops in preflight-shapes.ts,
 * the operator allow-list in preflight-operators.ts and the signature matching in preflight-signature.ts.
 */

export const preflightOptionsSchema = z.strictObject({
  /** Operator domains nodes may use ("" and "ai.onnx" are the same). ai.onnx.ml is opt-in: DL exports never need it. */
  allowedDomains: z.array(z.string()).default(["ai.onnx"]),
  /** Supported opset versions per domain, inclusive; a domain without an entry is not version-checked. */
  opsetRanges: z.record(z.string(), z.tuple([z.number().int(), z.number().int()])).default({ "ai.onnx": [7, 21], "ai.onnx.ml": [1, 5] }),
  irVersions: z.tuple([z.number().int(), z.number().int()]).default([3, 10]),
  /** If/Loop/Scan bodies nested deeper than this are refused. */
  maxSubgraphDepth: z.number().int().min(0).max(32).default(8),
});
export type PreflightOptions = z.input<typeof preflightOptionsSchema>;

export type PreflightCode =
  | "NOT_ONNX"
  | "TOO_LARGE"
  | "EXTERNAL_DATA"
  | "DOMAIN_NOT_ALLOWED"
  | "OPSET_UNSUPPORTED"
  | "INPUT_MISMATCH"
  | "OUTPUT_MISMATCH"
  | "TOO_MANY_PARAMETERS"
  | "TOO_MANY_NODES"
  | "CONSTANT_TOO_LARGE"
  | "GRAPH_TOO_DEEP"
  | "OPERATOR_NOT_ALLOWED"
  | "TENSOR_TOO_LARGE"
  | "LOOP_TOO_LONG";

/** A model's input or output as declared: dims are numbers (fixed), names (symbolic) or null (unknown). */
export interface ModelTensorInfo {
  name: string;
  dtype: string;
  /** null when the model declares no shape at all. */
  shape: (number | string | null)[] | null;
}

export interface ModelInfo {
  irVersion: number;
  opsets: Record<string, number>;
  parameters: number;
  /** Counting nodes inside subgraphs, and each function call as the nodes it expands to. */
  nodes: number;
  inputs: ModelTensorInfo[];
  outputs: ModelTensorInfo[];
}

export type PreflightResult = { ok: true; info: ModelInfo } | { ok: false; code: PreflightCode; message: string };

export function preflight(bytes: Uint8Array, spec: ModelSpec, opts: PreflightOptions = {}): PreflightResult {
  const o = preflightOptionsSchema.parse(opts);
  try {
    return { ok: true, info: check(bytes, spec, o) };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, code: e.code, message: e.message };
    throw e;
  }
}

type Options = z.output<typeof preflightOptionsSchema>;

function check(bytes: Uint8Array, spec: ModelSpec, o: Options): ModelInfo {
  const budget = budgetSchema.parse(spec.budget);
  if (bytes.byteLength > budget.maxBytes)
    refuse(
      "TOO_LARGE",
      `The model file is ${size(bytes.byteLength)}; this problem accepts at most ${size(budget.maxBytes)}. Use a smaller model.`,
    );

  // Proportionate to the budget: a real model is far below both; memory spent decoding stays bounded.
  const limits = { objects: Math.max(100_000, 200 * budget.maxNodes), scalars: budget.maxParameters + 1_000_000 };
  let model: ModelProto;
  try {
    scanWire(bytes, limits);
    model = decodeModel(bytes);
  } catch (e) {
    if (e instanceof WireLimit && e.counts.objects > limits.objects)
      refuse(
        "TOO_LARGE",
        `The model has more than ${limits.objects} entries (nodes, attributes, names, dims); it is too large to be read. Use a simpler model.`,
      );
    if (e instanceof WireLimit)
      refuse(
        "TOO_MANY_PARAMETERS",
        `The model stores more than ${limits.scalars} numbers; this problem allows at most ${budget.maxParameters} parameters. Use fewer or smaller layers.`,
      );
    if (/max depth/.test((e as Error).message))
      refuse("GRAPH_TOO_DEEP", "The model is nested too deeply to be read. Flatten nested If/Loop/Scan bodies.");
    return refuse("NOT_ONNX", `${NOT_ONNX} (it could not be decoded: ${(e as Error).message.slice(0, 80)}).`);
  }
  const graph = model.graph;
  const ir = num(model.ir_version);
  if (!graph || ir <= 0 || graph.output.length === 0)
    return refuse("NOT_ONNX", `${NOT_ONNX} (it has no IR version or no graph with outputs).`);
  const [irMin, irMax] = o.irVersions;
  if (ir < irMin || ir > irMax)
    refuse(
      "OPSET_UNSUPPORTED",
      `The model uses ONNX IR version ${ir}; this grader accepts ${irMin} to ${irMax}. Re-export it with a supported exporter version, or set model.ir_version = ${Math.min(Math.max(ir, irMin), irMax)} with the onnx package.`,
    );

  const walker = new Walker(o, budget.maxConstantBytes, shapeHook(budget));
  walker.graph(graph, "", 0, null);
  for (const [i, t] of model.training_info.entries()) {
    if (t.initialization) walker.graph(t.initialization, ` in training_info[${i}].initialization`, 0, null);
    if (t.algorithm) walker.graph(t.algorithm, ` in training_info[${i}].algorithm`, 0, null);
  }
  const functions = new Map<string, FunctionProto>();
  for (const f of model.functions) {
    if (isReservedDomain(norm(f.domain), o))
      refuse(
        "DOMAIN_NOT_ALLOWED",
        `The model defines a function '${show(f.name)}' in the domain '${show(f.domain)}', which belongs to the runtime. Give model-local functions a domain of their own (e.g. 'local.functions').`,
      );
    functions.set(funcKey(f.domain, f.name, f.overload), f);
    const where = ` in function '${show(f.name)}'`;
    for (const a of f.attribute_proto) walker.attribute(a, `the default of attribute '${show(a.name)}'${where}`, 0, new Scope(null));
    walker.nodes(f.node, where, 0, new Scope(null));
  }

  const usedDomains = new Set<string>();
  for (const { node, label } of walker.seen) {
    const domain = norm(node.domain);
    if (functions.has(funcKey(node.domain, node.op_type, node.overload))) continue;
    if (!o.allowedDomains.map(norm).includes(domain))
      refuse(
        "DOMAIN_NOT_ALLOWED",
        `${cap(label)} uses operator '${show(node.op_type)}' from domain '${show(domain)}', which is not allowed here (allowed: ${o.allowedDomains.map(norm).join(", ")}). Export with standard ONNX operators only: no custom or contrib ops, no ATen fallthrough.`,
      );
    usedDomains.add(domain);
    if (domain === "ai.onnx") checkOperator(node.op_type, label, budget.operators);
  }

  const opsets: Record<string, number> = {};
  for (const imp of model.opset_import) opsets[norm(imp.domain)] = num(imp.version);
  const imports = [
    { where: "The model", list: opsets },
    ...model.functions.map((f) => ({ where: `Function '${show(f.name)}'`, list: opsetMap(f) })),
  ];
  for (const { where, list } of imports) checkOpsets(where, list, o);
  for (const domain of usedDomains)
    if (opsets[domain] === undefined)
      refuse(
        "OPSET_UNSUPPORTED",
        `The model uses ${domain} operators but imports no ${domain} opset. Re-export it, e.g. torch.onnx.export(..., opset_version=17).`,
      );

  const nodeCount = countNodes(model, functions);
  if (nodeCount > budget.maxNodes)
    refuse(
      "TOO_MANY_NODES",
      `The model has ${nodeCount} nodes (counting If/Loop/Scan bodies and function calls); this problem allows at most ${budget.maxNodes}. Use a simpler architecture.`,
    );
  if (walker.parameters > budget.maxParameters)
    refuse(
      "TOO_MANY_PARAMETERS",
      `The model has ${walker.parameters} parameters (elements of initializers and constants); this problem allows at most ${budget.maxParameters}. Use fewer or smaller layers.`,
    );

  const initialized = new Set([...graph.initializer.map((t) => t.name), ...graph.sparse_initializer.map((s) => s.values?.name ?? "")]);
  const inputs = graph.input.filter((v) => !initialized.has(v.name));
  matchSignature("input", inputs, spec.inputs);
  // A named dim that no input has (e.g. an embedding's width D) is the model's choice, not something we vary.
  const varied = new Set(spec.inputs.flatMap((i) => i.shape.filter((d): d is string => typeof d === "string")));
  matchSignature("output", graph.output, spec.outputs, varied);

  return {
    irVersion: ir,
    opsets,
    parameters: walker.parameters,
    nodes: nodeCount,
    inputs: inputs.map(describe),
    outputs: graph.output.map(describe),
  };
}

const NOT_ONNX =
  "The file is not an ONNX model. Upload the .onnx file written by torch.onnx.export or onnx.save_model, complete and unchanged";

function checkOpsets(where: string, opsets: Record<string, number>, o: Options) {
  for (const [domain, version] of Object.entries(opsets)) {
    const range = o.opsetRanges[domain];
    if (range && (version < range[0] || version > range[1]))
      refuse(
        "OPSET_UNSUPPORTED",
        `${where} imports ${domain} opset ${version}; this grader supports ${range[0]} to ${range[1]}. Re-export with opset_version=${Math.min(Math.max(version, range[0]), range[1])}.`,
      );
  }
}

const opsetMap = (f: FunctionProto): Record<string, number> =>
  Object.fromEntries(f.opset_import.map((i) => [norm(i.domain), num(i.version)]));

/** Domains whose operators the runtime implements itself: a local function there could shadow a kernel. */
function isReservedDomain(domain: string, o: Options): boolean {
  return (
    o.allowedDomains.map(norm).includes(domain) ||
    /^(ai\.onnx|com\.microsoft|com\.ms|org\.pytorch|ai\.graphcore|com\.intel)(\.|$)/.test(domain)
  );
}
