import type { z } from "zod";
import {
  num,
  type AttributeProto,
  type FunctionProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type SparseTensorProto,
  type TensorProto,
  type ValueInfoProto,
} from "./schema.ts";
import type { PreflightCode, preflightOptionsSchema } from "./preflight.ts";

/**
 * The graph half of preflight: one walk over every graph, function, attribute and tensor that refuses external
 * data, oversized constants and deep nesting and counts parameters, plus the node count with function calls
 * expanded. The refusal and the message helpers live here too, as the bottom layer: preflight.ts and
 * preflight-signature.ts import from this file, and it imports only types back, so there is no runtime cycle.
 */

/** The first fault ends the check: thrown from wherever it is found, turned into a result only by preflight(). */
export class Refusal extends Error {
  constructor(
    readonly code: PreflightCode,
    message: string,
  ) {
    super(message);
  }
}
export const refuse = (code: PreflightCode, message: string): never => {
  throw new Refusal(code, message);
};

type Options = z.output<typeof preflightOptionsSchema>;

/**
 * What preflight knows about a tensor: its dims (a number when fixed, null when unknown, at least 1) or null
 * for an unknown rank, and its values when it is small and constant (shapes, repeats, scales, trip counts).
 */
export interface Known {
  dims: (number | null)[] | null;
  values?: number[];
}

/** Names in scope with what is known about them; `iterations` is how often enclosing loops run this graph. */
export class Scope {
  private readonly known = new Map<string, Known>();
  constructor(
    private readonly parent: Scope | null,
    readonly iterations: number = parent?.iterations ?? 1,
  ) {}
  set(name: string, k: Known | null) {
    if (name && k) this.known.set(name, k);
  }
  get(name: string): Known | undefined {
    return name ? (this.known.get(name) ?? this.parent?.get(name)) : undefined;
  }
}

/** Called for every node before its bodies are walked; returns the scope its bodies run in. */
export type NodeHook = (node: NodeProto, label: string, scope: Scope) => Scope;

/** One pass over every graph, node, attribute and tensor: external data, sizes, depth, parameters. */
export class Walker {
  parameters = 0;
  readonly seen: { node: NodeProto; label: string }[] = [];
  constructor(
    private readonly o: Options,
    private readonly maxConstantBytes: number,
    /** Shape and value propagation with its size checks (preflight-shapes.ts). */
    private readonly hook: NodeHook = (_n, _l, scope) => scope,
  ) {}

  graph(g: GraphProto, where: string, depth: number, outer: Scope | null) {
    if (depth > this.o.maxSubgraphDepth)
      refuse(
        "GRAPH_TOO_DEEP",
        `The model nests If/Loop/Scan bodies more than ${this.o.maxSubgraphDepth} levels deep (${where.trim()}). Flatten the nested control flow.`,
      );
    const scope = new Scope(outer);
    // The top graph's inputs have their declared dims; a body's inputs are whatever the loop passes in.
    for (const v of g.input) scope.set(v.name, { dims: depth === 0 ? declaredDims(v) : null });
    for (const t of g.initializer) {
      this.tensor(t, `initializer '${show(t.name)}'${where}`);
      scope.set(t.name, { dims: tensorDims(t), values: tensorValues(t) });
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
      const inner = standard ? this.hook(n, label, scope) : scope;
      for (const a of n.attribute) {
        // Past two levels the full path of enclosing nodes stops helping; name the parent and the depth.
        const body = ` in the body '${show(a.name)}' of ${depth >= 1 ? `${self} (${depth + 1} levels deep)` : label}`;
        this.attribute(a, `attribute '${show(a.name)}' of ${label}`, depth, inner, body);
        if (standard && n.op_type === "Constant") this.parameters += a.floats.length + a.ints.length + a.strings.length;
      }
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
export function countNodes(model: ModelProto, functions: Map<string, FunctionProto>): number {
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

/** Bytes per element by ONNX data type; sub-byte types round up, strings count by payload. */
const ELEM_BYTES = [0, 4, 1, 1, 2, 2, 4, 8, 0, 1, 2, 8, 4, 8, 8, 16, 2, 1, 1, 1, 1, 0.5, 0.5, 0.5, 1, 0.25, 0.25];
export const elemSize = (t: number): number => ELEM_BYTES[t] ?? 8;

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

/** Ranks beyond this are unknown to the propagation (real tensors have a handful of dims; hostile ones may list millions). */
const MAX_RANK = 64;

/** A tensor's dims for the propagation, or null (unknown rank) past MAX_RANK. */
export const tensorDims = (t: TensorProto): number[] | null => (t.dims.length > MAX_RANK ? null : t.dims.map(num));

/** Tensors up to this many elements have their values read: shapes, repeats, scales, pads, trip counts. */
const SMALL = 64;

/** The values of a small numeric tensor (float, double, int32, int64, bool…), or undefined. */
export function tensorValues(t: TensorProto): number[] | undefined {
  const n = t.dims.reduce((p: number, d) => p * num(d), 1);
  if (n > SMALL) return undefined;
  const typed: Record<number, number[]> = {
    1: t.float_data,
    6: t.int32_data,
    7: t.int64_data.map(num),
    11: t.double_data,
    9: t.int32_data,
    2: t.int32_data,
    3: t.int32_data,
  };
  const listed = typed[t.data_type];
  if (listed?.length) return listed.length === n ? listed.slice() : undefined;
  const read = RAW[t.data_type];
  if (!read) return undefined;
  // protobufjs leaves an absent bytes field as a plain empty array, which has no buffer.
  const raw = t.raw_data instanceof Uint8Array ? t.raw_data : Uint8Array.from(t.raw_data);
  if (raw.length !== n * read.width) return undefined;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: n }, (_, i) => read.get(view, i * read.width));
}

const RAW: Record<number, { width: number; get: (v: DataView, at: number) => number }> = {
  1: { width: 4, get: (v, at) => v.getFloat32(at, true) },
  2: { width: 1, get: (v, at) => v.getUint8(at) },
  3: { width: 1, get: (v, at) => v.getInt8(at) },
  6: { width: 4, get: (v, at) => v.getInt32(at, true) },
  7: { width: 8, get: (v, at) => Number(v.getBigInt64(at, true)) },
  9: { width: 1, get: (v, at) => v.getUint8(at) },
  11: { width: 8, get: (v, at) => v.getFloat64(at, true) },
};

/** A declared value's dims: fixed ones as numbers, symbolic or missing ones as null; null without a shape. */
function declaredDims(v: ValueInfoProto): (number | null)[] | null {
  const t = v.type?.value === "tensor_type" ? v.type.tensor_type : null;
  const dims = t?.shape?.dim;
  if (!dims || dims.length > MAX_RANK) return null;
  return dims.map((d) => (d.value === "dim_value" && num(d.dim_value) > 0 ? num(d.dim_value) : null));
}

export const norm = (domain: string): string => (domain === "" ? "ai.onnx" : domain);
export const funcKey = (domain: string, name: string, overload: string) => `${norm(domain)}\u0000${name}\u0000${overload}`;

/** Model-controlled strings in messages: no control characters, bounded length. */
export function show(s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return clean.length > 60 ? `${clean.slice(0, 57)}...` : clean;
}

export const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

export function size(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes > 2 ** 60) return "more than an exabyte";
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}
