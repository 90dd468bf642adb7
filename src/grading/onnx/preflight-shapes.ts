import type { Budget } from "../../../graders/onnx/types.ts";
import { num, type AttributeProto, type NodeProto } from "./schema.ts";
import { cap, elemSize, refuse, Scope, size, tensorDims, tensorValues, type Known, type NodeHook } from "./preflight-graph.ts";

/**
 * A small static shape and constant propagation over the graph, in node order (ONNX graphs are sorted), so
 * that the operators that make tensors out of a few numbers (Expand, Tile, Resize/Upsample, Pad, Range,
 * OneHot, ConstantOfShape) are sized before any session exists, and Loop/Scan trip counts are bounded.
 *
 * Sound in one direction only: every size computed here is a lower bound (an unknown dim counts as 1, the
 * smallest batch a grader feeds), so a refusal is certain; what cannot be computed (a shape read from the
 * input's values, a Loop that stops on a computed condition) passes, and the sandbox's memory cap and
 * wall-clock timeout catch it at run time.
 */

/** Ops whose output has the input's shape (enough to carry a known shape through activations). */
const SAME_SHAPE = new Set(
  "Identity Cast CastLike Relu LeakyRelu Neg Abs Sigmoid Tanh Exp Log Sqrt Floor Ceil Round Not Sign Reciprocal Erf Softplus Elu Selu Clip Dropout".split(
    " ",
  ),
);

/** The longest value list carried (a shape or a list of scales is far shorter). */
const MAX_VALUES = 64;

export function shapeHook(budget: Budget): NodeHook {
  return (n, label, scope) => {
    const inputs = n.input.map((name) => scope.get(name));
    const out = propagate(n, inputs, label, budget);
    // Values stay small (shapes, repeats, scales): a chain of Concat(a, a) must not double an array 2,000 times.
    if (out?.values && out.values.length > MAX_VALUES) delete out.values;
    if (out) scope.set(n.output[0] ?? "", out);
    return bodyScope(n, inputs, label, scope, budget);
  };
}

const attr = (n: NodeProto, name: string): AttributeProto | undefined => n.attribute.find((a) => a.name === name);
const lowerBound = (dims: (number | null)[]): number => dims.reduce<number>((p, d) => p * Math.max(d ?? 1, 0), 1);
const scalar = (k: Known | undefined): number | undefined => (k?.values?.length === 1 ? k.values[0] : undefined);
const shown = (dims: (number | null)[]) => `[${dims.map((d) => d ?? "?").join(", ")}]`;
const count = (n: number) => (n < 1e21 ? Math.round(n).toLocaleString("en-US") : "more than 10^21");

function tooLarge(label: string, dims: (number | null)[], budget: Budget, fix: string) {
  const n = lowerBound(dims);
  if (n > budget.maxActivationElements)
    refuse(
      "TENSOR_TOO_LARGE",
      `${cap(label)} makes a tensor of shape ${shown(dims)}, at least ${count(n)} elements (? counts as 1); this problem allows at most ${count(budget.maxActivationElements)} per tensor. ${fix}`,
    );
}

/** What is known about the node's first output; undefined when nothing is. */
function propagate(n: NodeProto, inputs: (Known | undefined)[], label: string, budget: Budget): Known | undefined {
  const [a, b, c] = inputs;
  switch (n.op_type) {
    case "Constant": {
      const v = attr(n, "value")?.t;
      if (v) return { dims: tensorDims(v), values: tensorValues(v) };
      const ints = attr(n, "value_ints")?.ints ?? attr(n, "value_floats")?.floats;
      if (ints && ints.length <= 64) return { dims: [ints.length], values: ints.map((x) => num(x)) };
      const one = attr(n, "value_int") ?? attr(n, "value_float");
      if (one) return { dims: [], values: [one.name === "value_int" ? num(one.i) : one.f] };
      return undefined;
    }
    case "Shape": {
      const dims = a?.dims;
      if (!dims) return undefined;
      const start = attr(n, "start") ? num(attr(n, "start")!.i) : 0;
      const end = attr(n, "end") ? num(attr(n, "end")!.i) : dims.length;
      const part = dims.slice(start, end);
      return { dims: [part.length], values: part.every((d) => d !== null) ? (part as number[]) : undefined };
    }
    case "Concat":
      if (inputs.every((k) => k?.values && (k.dims?.length ?? 0) <= 1)) {
        const length = inputs.reduce((sum, k) => sum + k!.values!.length, 0);
        return length > MAX_VALUES ? { dims: [length] } : { dims: [length], values: inputs.flatMap((k) => k!.values!) };
      }
      return undefined;
    case "Unsqueeze":
    case "Squeeze":
    case "Flatten":
      return a?.values ? { dims: [a.values.length], values: a.values } : undefined;
    case "Reshape":
      if (b?.values && b.values.every((d) => d > 0)) return { dims: b.values, values: a?.values };
      return a?.values ? { dims: null, values: a.values } : undefined;
    case "Add":
    case "Sub":
    case "Mul":
    case "Div":
      return arithmetic(n.op_type, a, b);
    case "Gather": {
      if (!a?.values || !b?.values || num(attr(n, "axis")?.i) !== 0) return undefined;
      const values = b.values.map((i) => a.values![i < 0 ? i + a.values!.length : i]);
      return values.every((v) => v !== undefined) ? { dims: b.dims, values: values as number[] } : undefined;
    }
    case "Slice": {
      if (!a?.values || !b?.values || !c?.values || b.values.length !== 1) return undefined;
      const step = scalar(inputs[4]) ?? 1;
      if (step !== 1) return undefined;
      const len = a.values.length;
      const at = (i: number) => Math.min(Math.max(i < 0 ? i + len : i, 0), len);
      const values = a.values.slice(at(b.values[0]!), at(c.values[0]!));
      return { dims: [values.length], values };
    }
    case "Expand": {
      if (!b?.values) return undefined;
      const inDims = a?.dims ?? [];
      const rank = Math.max(inDims.length, b.values.length);
      const dims = Array.from({ length: rank }, (_, i) => {
        const x = inDims[i - (rank - inDims.length)];
        const y = b.values![i - (rank - b.values!.length)];
        if (y === undefined) return x ?? null;
        if (x === undefined) return y;
        return x === null ? (y > 1 ? y : null) : Math.max(x, y);
      });
      tooLarge(label, dims, budget, "Expand to a smaller shape.");
      return { dims };
    }
    case "Tile": {
      if (!b?.values) return undefined;
      const dims = b.values.map((r, i) => {
        const d = a?.dims?.[i];
        return d === undefined || d === null ? (r > 1 ? r : null) : d * r;
      });
      tooLarge(label, dims, budget, "Use fewer repeats.");
      return { dims };
    }
    case "Resize":
    case "Upsample": {
      // Resize: X, roi, scales, sizes (opset 11+); Resize-10 and Upsample: X, scales.
      const scales = n.input.length === 2 ? b : c;
      const sizes = n.op_type === "Resize" ? inputs[3] : undefined;
      let dims: (number | null)[] | undefined;
      if (sizes?.values?.length) dims = sizes.values;
      else if (scales?.values?.length)
        dims = scales.values.map((s, i) => {
          const d = a?.dims?.[i];
          return d === null || d === undefined ? (s >= 2 ? Math.floor(s) : null) : Math.floor(d * s);
        });
      if (!dims) return undefined;
      tooLarge(label, dims, budget, "Use smaller scales or sizes.");
      return { dims };
    }
    case "Pad": {
      const pads = b?.values ?? attr(n, "pads")?.ints.map(num);
      if (!pads || pads.length % 2) return undefined;
      const rank = pads.length / 2;
      const known = inputs[3] === undefined && n.input.length < 4 ? a?.dims : null; // with `axes`, pads map elsewhere
      const dims = Array.from({ length: rank }, (_, i) => Math.max((known?.[i] ?? 1) + pads[i]! + pads[i + rank]!, 0));
      tooLarge(label, dims, budget, "Pad by fewer elements.");
      return { dims };
    }
    case "Range": {
      const [start, limit, delta] = [scalar(a), scalar(b), scalar(c)];
      if (start === undefined || limit === undefined || delta === undefined || delta === 0) return undefined;
      const dims = [Math.max(Math.ceil((limit - start) / delta), 0)];
      tooLarge(label, dims, budget, "Use a shorter range.");
      return { dims };
    }
    case "OneHot": {
      const depth = scalar(b);
      if (depth === undefined) return undefined;
      const dims = [...(a?.dims ?? []), Math.max(Math.floor(depth), 0)];
      tooLarge(label, dims, budget, "Use a smaller depth.");
      return { dims };
    }
    case "ConstantOfShape": {
      if (!a?.values) return undefined;
      const dims = a.values;
      const bytes = lowerBound(dims) * elemSize(attr(n, "value")?.t?.data_type ?? 1);
      if (bytes > budget.maxConstantBytes)
        refuse(
          "CONSTANT_TOO_LARGE",
          `${cap(label)} fills a tensor of shape [${dims.join(", ")}] (${size(bytes)}); at most ${size(budget.maxConstantBytes)} per constant is allowed. Use a smaller shape.`,
        );
      return { dims };
    }
    default:
      return SAME_SHAPE.has(n.op_type) && a ? { dims: a.dims, values: n.op_type === "Identity" ? a.values : undefined } : undefined;
  }
}

/** Elementwise shape arithmetic on small constants (a scalar broadcasts); integer division truncates. */
function arithmetic(op: string, a: Known | undefined, b: Known | undefined): Known | undefined {
  if (!a?.values || !b?.values) return undefined;
  const n = Math.max(a.values.length, b.values.length);
  if ((a.values.length !== n && a.values.length !== 1) || (b.values.length !== n && b.values.length !== 1)) return undefined;
  const values = Array.from({ length: n }, (_, i) => {
    const x = a.values![a.values!.length === 1 ? 0 : i]!;
    const y = b.values![b.values!.length === 1 ? 0 : i]!;
    if (op === "Add") return x + y;
    if (op === "Sub") return x - y;
    if (op === "Mul") return x * y;
    const q = x / y;
    return Number.isInteger(x) && Number.isInteger(y) ? Math.trunc(q) : q;
  });
  return { dims: (a.values.length === n ? a.dims : b.dims) ?? [n], values };
}

/**
 * The scope a Loop's or Scan's body runs in: it carries how many times the enclosing loops run, so that
 * nested constant trip counts multiply. A Loop without a constant trip count (it stops on a condition the
 * model computes) is allowed: the run's wall-clock limit ends it if it never stops.
 */
function bodyScope(n: NodeProto, inputs: (Known | undefined)[], label: string, scope: Scope, budget: Budget): Scope {
  let trips: number | undefined;
  if (n.op_type === "Loop") trips = scalar(inputs[0]);
  if (n.op_type === "Scan") {
    const scans = num(attr(n, "num_scan_inputs")?.i);
    const first = inputs[inputs.length - scans];
    const axes = attr(n, "scan_input_axes")?.ints.map(num) ?? [];
    const dims = first?.dims;
    if (scans > 0 && dims) {
      const axis = axes[0] ?? 0;
      trips = dims[axis < 0 ? axis + dims.length : axis] ?? undefined;
    }
  }
  if (trips === undefined) return scope;
  const total = trips * scope.iterations;
  if (total > budget.maxLoopIterations)
    refuse(
      "LOOP_TOO_LONG",
      `${cap(label)} runs ${count(trips)} iterations${scope.iterations > 1 ? ` inside loops that run ${count(scope.iterations)} times` : ""}; this problem allows at most ${count(budget.maxLoopIterations)} in all. Vectorise the computation instead of looping.`,
    );
  return new Scope(scope, Math.max(total, 1));
}
