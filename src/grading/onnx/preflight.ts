import { z } from "zod";
import type { ModelSpec, TensorSpec } from "../../../graders/onnx/types.ts";
import {
  decodeModel,
  num,
  scanWire,
  WireLimit,
  type AttributeProto,
  type FunctionProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type SparseTensorProto,
  type TensorProto,
  type ValueInfoProto,
} from "./schema.ts";

/**
 * Static checks of an uploaded model before any onnxruntime session exists: is it ONNX, is it
 * self-contained (external data reads files next to the process), does it use only allowed operator
 * domains and opsets, does it fit the problem's signature and budget. Messages are for the student.
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
  | "GRAPH_TOO_DEEP";

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

class Refusal extends Error {
  constructor(
    readonly code: PreflightCode,
    message: string,
  ) {
    super(message);
  }
}
const refuse = (code: PreflightCode, message: string): never => {
  throw new Refusal(code, message);
};

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
  const { budget } = spec;
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

  const walker = new Walker(o, budget.maxConstantBytes);
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

/** Names in scope that hold int64 constants, for spotting ConstantOfShape with a static, huge shape. */
class Scope {
  private readonly values = new Map<string, number[]>();
  constructor(private readonly parent: Scope | null) {}
  set(name: string, v: number[] | null) {
    if (v) this.values.set(name, v);
  }
  get(name: string): number[] | undefined {
    return this.values.get(name) ?? this.parent?.get(name);
  }
}

/** One pass over every graph, node, attribute and tensor: external data, sizes, depth, parameters. */
class Walker {
  parameters = 0;
  readonly seen: { node: NodeProto; label: string }[] = [];
  constructor(
    private readonly o: Options,
    private readonly maxConstantBytes: number,
  ) {}

  graph(g: GraphProto, where: string, depth: number, outer: Scope | null) {
    if (depth > this.o.maxSubgraphDepth)
      refuse(
        "GRAPH_TOO_DEEP",
        `The model nests If/Loop/Scan bodies more than ${this.o.maxSubgraphDepth} levels deep (${where.trim()}). Flatten the nested control flow.`,
      );
    const scope = new Scope(outer);
    for (const t of g.initializer) {
      this.tensor(t, `initializer '${show(t.name)}'${where}`);
      scope.set(t.name, int64Values(t));
    }
    for (const s of g.sparse_initializer) this.sparse(s, `sparse initializer '${show(s.values?.name ?? "")}'${where}`);
    this.nodes(g.node, where, depth, scope);
  }

  nodes(list: NodeProto[], where: string, depth: number, scope: Scope) {
    for (const n of list) {
      const self = n.name
        ? `node '${show(n.name)}' (${show(n.op_type)})`
        : `${/^[aeiou]/i.test(n.op_type) ? "an" : "a"} ${show(n.op_type)} node`;
      const label = `${self}${where}`;
      this.seen.push({ node: n, label });
      const standard = norm(n.domain) === "ai.onnx";
      for (const a of n.attribute) {
        // Past two levels the full path of enclosing nodes stops helping; name the parent and the depth.
        const body = ` in the body '${show(a.name)}' of ${depth >= 1 ? `${self} (${depth + 1} levels deep)` : label}`;
        this.attribute(a, `attribute '${show(a.name)}' of ${label}`, depth, scope, body);
        if (standard && n.op_type === "Constant") this.parameters += a.floats.length + a.ints.length + a.strings.length;
      }
      if (standard && n.op_type === "Constant") scope.set(n.output[0] ?? "", constantInts(n));
      if (standard && n.op_type === "ConstantOfShape") this.shapeBomb(n, label, scope);
    }
  }

  attribute(a: AttributeProto, what: string, depth: number, scope: Scope, body = ` in the body '${show(a.name)}'`) {
    if (a.t) this.tensor(a.t, `the tensor in ${what}`);
    for (const t of a.tensors) this.tensor(t, `a tensor in ${what}`);
    if (a.sparse_tensor) this.sparse(a.sparse_tensor, `the sparse tensor in ${what}`);
    for (const s of a.sparse_tensors) this.sparse(s, `a sparse tensor in ${what}`);
    if (a.g) this.graph(a.g, body, depth + 1, scope);
    for (const g of a.graphs) this.graph(g, body, depth + 1, scope);
  }

  tensor(t: TensorProto, what: string) {
    noExternal(t, what);
    const elems = elements(t.dims, what);
    this.limit(Math.max(elems * elemSize(t.data_type), payloadBytes(t)), what);
    this.parameters += elems;
  }

  /** Runtimes materialise sparse initializers densely, so the dense shape is what counts. */
  sparse(s: SparseTensorProto, what: string) {
    if (s.values) noExternal(s.values, `${what} (values)`);
    if (s.indices) noExternal(s.indices, `${what} (indices)`);
    const elems = elements(s.dims, what);
    const dense = elems * elemSize(s.values?.data_type ?? 1);
    this.limit(Math.max(dense, s.values ? payloadBytes(s.values) : 0, s.indices ? payloadBytes(s.indices) : 0), what);
    this.parameters += elems;
  }

  private shapeBomb(n: NodeProto, label: string, scope: Scope) {
    const shape = scope.get(n.input[0] ?? "");
    if (!shape) return;
    const value = n.attribute.find((a) => a.name === "value")?.t;
    const bytes = shape.reduce((p, d) => p * Math.max(d, 0), 1) * (value ? elemSize(value.data_type) : 4);
    if (bytes > this.maxConstantBytes)
      refuse(
        "CONSTANT_TOO_LARGE",
        `${cap(label)} fills a tensor of shape [${shape.join(", ")}] (${size(bytes)}); at most ${size(this.maxConstantBytes)} per constant is allowed. Use a smaller shape.`,
      );
  }

  private limit(bytes: number, what: string) {
    if (bytes > this.maxConstantBytes)
      refuse(
        "CONSTANT_TOO_LARGE",
        `${cap(what)} holds ${size(bytes)}; this problem allows at most ${size(this.maxConstantBytes)} per initializer or constant. Make that tensor smaller (e.g. a narrower layer).`,
      );
  }
}

function noExternal(t: TensorProto, what: string) {
  if (t.data_location !== 1 && t.external_data.length === 0) return;
  const location = t.external_data.find((e) => e.key === "location")?.value;
  refuse(
    "EXTERNAL_DATA",
    `${cap(what)} keeps its data in an external file${location ? ` ('${show(location)}')` : ""}. Upload one self-contained .onnx file: save it with onnx.save_model(model, path, save_as_external_data=False).`,
  );
}

/** Expands function calls (so nested calls cannot hide a huge graph) and refuses recursive functions. */
function countNodes(model: ModelProto, functions: Map<string, FunctionProto>): number {
  const sizes = new Map<string, number>();
  const active = new Set<string>();
  const fnSize = (key: string, f: FunctionProto): number => {
    const known = sizes.get(key);
    if (known !== undefined) return known;
    if (active.has(key))
      refuse(
        "GRAPH_TOO_DEEP",
        `Function '${show(f.name)}' calls itself (directly or through other functions); ONNX functions cannot be recursive.`,
      );
    active.add(key);
    const n = Math.max(1, count(f.node));
    active.delete(key);
    sizes.set(key, n);
    return n;
  };
  const count = (nodes: NodeProto[]): number => {
    let total = 0;
    for (const node of nodes) {
      const key = funcKey(node.domain, node.op_type, node.overload);
      const f = functions.get(key);
      total += f ? fnSize(key, f) : 1;
      for (const a of node.attribute) for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) total += count(g.node);
    }
    return total;
  };
  for (const [key, f] of functions) fnSize(key, f);
  let total = count(model.graph!.node);
  for (const t of model.training_info) total += count(t.initialization?.node ?? []) + count(t.algorithm?.node ?? []);
  return total;
}

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

function matchSignature(kind: "input" | "output", model: ValueInfoProto[], spec: TensorSpec[], varied?: Set<string>) {
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

function describe(v: ValueInfoProto): ModelTensorInfo {
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
/** Bytes per element by ONNX data type; sub-byte types round up, strings count by payload. */
const ELEM_BYTES = [0, 4, 1, 1, 2, 2, 4, 8, 0, 1, 2, 8, 4, 8, 8, 16, 2, 1, 1, 1, 1, 0.5, 0.5, 0.5, 1, 0.25, 0.25];
const elemSize = (t: number): number => ELEM_BYTES[t] ?? 8;

function elements(dims: TensorProto["dims"], what: string): number {
  let n = 1;
  for (const d of dims) {
    const v = num(d);
    if (v < 0) refuse("NOT_ONNX", `${cap(what)} has a negative dimension (${v}); the file is not a valid ONNX model.`);
    n *= v;
  }
  return n;
}

function payloadBytes(t: TensorProto): number {
  const strings = t.string_data.reduce((s, b) => s + b.length, 0);
  return (
    t.raw_data.length +
    4 * (t.float_data.length + t.int32_data.length) +
    8 * (t.int64_data.length + t.uint64_data.length + t.double_data.length) +
    strings
  );
}

/** The values of a small int64 tensor (a shape), or null when it is not one. */
function int64Values(t: TensorProto): number[] | null {
  if (t.data_type !== 7) return null;
  if (t.int64_data.length) return t.int64_data.length <= 16 ? t.int64_data.map(num) : null;
  const n = t.raw_data.length / 8;
  if (!Number.isInteger(n) || n > 16) return null;
  // protobufjs leaves an absent bytes field as a plain empty array, which has no buffer.
  const raw = t.raw_data instanceof Uint8Array ? t.raw_data : Uint8Array.from(t.raw_data);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: n }, (_, i) => Number(view.getBigInt64(i * 8, true)));
}

function constantInts(n: NodeProto): number[] | null {
  const a = n.attribute.find((x) => x.name === "value" || x.name === "value_ints");
  if (!a) return null;
  if (a.t) return int64Values(a.t);
  return a.ints.length && a.ints.length <= 16 ? a.ints.map(num) : null;
}

const opsetMap = (f: FunctionProto): Record<string, number> =>
  Object.fromEntries(f.opset_import.map((i) => [norm(i.domain), num(i.version)]));
const norm = (domain: string): string => (domain === "" ? "ai.onnx" : domain);
const funcKey = (domain: string, name: string, overload: string) => `${norm(domain)}\u0000${name}\u0000${overload}`;

/** Domains whose operators the runtime implements itself: a local function there could shadow a kernel. */
function isReservedDomain(domain: string, o: Options): boolean {
  return (
    o.allowedDomains.map(norm).includes(domain) ||
    /^(ai\.onnx|com\.microsoft|com\.ms|org\.pytorch|ai\.graphcore|com\.intel)(\.|$)/.test(domain)
  );
}

/** Model-controlled strings in messages: no control characters, bounded length. */
function show(s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return clean.length > 60 ? `${clean.slice(0, 57)}...` : clean;
}

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

function size(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes > 2 ** 60) return "more than an exabyte";
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}
