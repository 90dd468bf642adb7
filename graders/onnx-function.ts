import { z } from "zod";
import { budgetField, toFloat64 } from "./onnx/common.ts";
import { sig2 } from "./format.ts";
import { rng, type Rng } from "./random.ts";
import { graded, prepare, problemError, test } from "./result.ts";
import type { GradeInput, GradeResult, Grader } from "./types.ts";
import { outputsFromReference } from "./onnx/reference-signature.ts";
import {
  elementName,
  fileField,
  gradeModel,
  inputSeedOf,
  modelFormat,
  privateFile,
  resolveShape,
  seedField,
  signatureProblem,
} from "./onnx/basic-model.ts";
import { builtinInputs, builtinOutputShape, computeBuiltin, referenceSchema, type BuiltinRef } from "./onnx/builtins.ts";
import { sizeOf, type F64 } from "./onnx/builtins-math.ts";
import { runChecked, withSession, withStaffDetail } from "./onnx/session.ts";
import {
  dimSchema,
  dtypeSchema,
  ModelFault,
  modelAnswerSchema,
  type Dim,
  type ModelAnswer,
  type ModelSpec,
  type Tensor,
  type TensorSpec,
} from "./onnx/types.ts";

/**
 * onnx-function: the student's model must compute the same function as a reference (an ONNX file of
 * the problem folder, or a TypeScript builtin) on random inputs. Each case is one batch; the score is
 * the share of cases whose every output is within tolerance.
 */

const distributionSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("uniform"), low: z.number(), high: z.number() }).refine((d) => d.low < d.high, "needs low < high"),
  z.strictObject({ kind: z.literal("normal"), mean: z.number().default(0), std: z.number().positive().default(1) }),
  z
    .strictObject({ kind: z.literal("integers"), low: z.number().int(), high: z.number().int() })
    .refine((d) => d.low <= d.high, "needs low <= high"),
]);
type Distribution = z.output<typeof distributionSchema>;

const INT_RANGE: Partial<Record<string, [number, number]>> = {
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint8: [0, 255],
  bool: [0, 1],
};
/** Input values drawn over all cases: a config cannot make grading stall the worker. */
const MAX_INPUT_VALUES = 1 << 25;

const inputSchema = z.strictObject({
  name: z.string().min(1).max(200),
  dtype: dtypeSchema.default("float32"),
  shape: z.array(dimSchema).max(8),
  distribution: distributionSchema.default({ kind: "normal", mean: 0, std: 1 }),
});
type FunctionInput = z.output<typeof inputSchema>;

/**
 * With a file reference, dtype and shape may be left out: the catalog reads them from the reference's
 * signature at load (resolveConfig). A builtin knows its own shape (e.g. [N, 3]); its dtype is float32.
 */
const outputSchema = z.strictObject({
  name: z.string().min(1).max(200),
  dtype: dtypeSchema.optional(),
  shape: z.array(dimSchema).max(8).optional(),
});

export const onnxFunctionConfigSchema = z
  .strictObject({
    reference: referenceSchema(fileField),
    inputs: z.array(inputSchema).min(1).max(16),
    outputs: z.array(outputSchema).min(1).max(16),
    cases: z.number().int().min(1).max(1000).default(10),
    /** The size of every free dimension ("N", ...), or one size per name. */
    batch: z.union([z.number().int().min(1).max(65536), z.record(z.string(), z.number().int().min(1).max(65536))]).default(4),
    rtol: z.number().min(0).default(1e-4),
    atol: z.number().min(0).default(1e-5),
    seed: seedField,
    budget: budgetField,
  })
  .superRefine((c, ctx) => {
    const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: "custom", path, message });
    for (const [key, specs] of [
      ["inputs", c.inputs],
      ["outputs", c.outputs],
    ] as const) {
      const names = specs.map((s) => s.name);
      names.forEach((n, i) => names.indexOf(n) !== i && issue([key, i, "name"], `duplicate name '${n}'`));
    }
    c.inputs.forEach((input, i) => {
      const range = INT_RANGE[input.dtype];
      const d = input.distribution;
      if (range && d.kind !== "integers") issue(["inputs", i, "distribution"], `a ${input.dtype} input needs distribution kind "integers"`);
      if (range && d.kind === "integers" && (d.low < range[0] || d.high > range[1]))
        issue(["inputs", i, "distribution"], `must lie in [${range.join(", ")}] for ${input.dtype}`);
    });
    const named = [...c.inputs, ...c.outputs].flatMap((s) => s.shape ?? []).filter((d): d is string => typeof d === "string");
    if (typeof c.batch !== "number") {
      for (const d of new Set(named)) if (c.batch[d] === undefined) issue(["batch"], `gives no size for the free dimension '${d}'`);
    }
    const values = c.cases * caseValues(c);
    if (values > MAX_INPUT_VALUES) issue(["cases"], `cases × batch would draw ${values} input values; at most ${MAX_INPUT_VALUES}`);
    if (typeof c.reference !== "string") builtinIssue(c.reference, c.inputs, c.outputs, issue);
  });
export type OnnxFunctionConfig = z.output<typeof onnxFunctionConfigSchema>;

/** A builtin reads fixed input names, has one output, and knows that output's shape. */
function builtinIssue(
  ref: BuiltinRef,
  inputs: readonly FunctionInput[],
  outputs: readonly { shape?: Dim[] | undefined }[],
  issue: (path: PropertyKey[], message: string) => void,
): void {
  const want = builtinInputs(ref);
  const have = inputs.map((i) => i.name);
  if (want.length !== have.length || want.some((n) => !have.includes(n)))
    return issue(["inputs"], `the ${ref.builtin} builtin reads exactly the inputs ${want.join(", ")} (got ${have.join(", ")})`);
  if (outputs.length !== 1) return issue(["outputs"], `the ${ref.builtin} builtin has exactly one output`);
  const shape = builtinOutputShape(ref, Object.fromEntries(inputs.map((i) => [i.name, i.shape])));
  const given = outputs[0]!.shape;
  if (typeof shape === "string") issue(["inputs"], shape);
  else if (given && !sameShapeOrScalar(given, shape))
    issue(["outputs", 0, "shape"], `the ${ref.builtin} builtin gives [${shape.join(", ")}], not [${given.join(", ")}]`);
}

/** [] and [1] are both a scalar loss: PyTorch exports `.mean()` as [], some graphs as [1]. */
function sameShapeOrScalar(a: readonly Dim[], b: readonly Dim[]): boolean {
  const scalar = (s: readonly Dim[]) => s.every((d) => d === 1);
  return (a.length === b.length && a.every((d, i) => d === b[i])) || (scalar(a) && scalar(b));
}

type SizedConfig = Pick<OnnxFunctionConfig, "batch" | "inputs">;
const freeDims = (c: Pick<OnnxFunctionConfig, "batch">, shapes: readonly (readonly Dim[])[]): Record<string, number> =>
  Object.fromEntries(
    shapes.flat().flatMap((d) => (typeof d === "string" ? [[d, typeof c.batch === "number" ? c.batch : c.batch[d]!]] : [])),
  );
function caseValues(c: SizedConfig): number {
  const free = freeDims(
    c,
    c.inputs.map((i) => i.shape),
  );
  // A size missing from a `batch` record is reported on its own; count it as 1 here.
  return c.inputs.reduce((sum, i) => sum + sizeOf(resolveShape(i.shape, free).map((d) => d || 1)), 0);
}

const signatureInputs = (config: OnnxFunctionConfig): TensorSpec[] =>
  config.inputs.map(({ name, dtype, shape }) => ({ name, dtype, shape }));

function modelSpec(config: OnnxFunctionConfig): ModelSpec {
  const shapes = Object.fromEntries(config.inputs.map((i) => [i.name, i.shape]));
  const outputs: TensorSpec[] = config.outputs.map((o) => {
    const shape = o.shape ?? (typeof config.reference === "string" ? undefined : builtinOutputShape(config.reference, shapes));
    // resolveConfig fills a file reference's shapes at load; a builtin's shape is checked by the schema.
    if (!Array.isArray(shape))
      throw new Error(`output '${o.name}' has no shape: it is read from the reference model when the problem loads`);
    return { name: o.name, dtype: o.dtype ?? "float32", shape };
  });
  return { inputs: signatureInputs(config), outputs, budget: config.budget };
}

function sampleTensor(input: FunctionInput, dims: number[], r: Rng): Tensor {
  const d: Distribution = input.distribution;
  const draw = (): number =>
    d.kind === "uniform" ? r.uniform(d.low, d.high) : d.kind === "normal" ? r.normal(d.mean, d.std) : r.int(d.low, d.high);
  const length = sizeOf(dims);
  if (input.dtype === "int64") {
    const data = new BigInt64Array(length);
    for (let i = 0; i < length; i++) data[i] = BigInt(draw());
    return { dtype: "int64", dims, data };
  }
  const Ctor = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint8: Uint8Array, bool: Uint8Array }[input.dtype];
  const data = new Ctor(length);
  for (let i = 0; i < length; i++) data[i] = draw();
  return { dtype: input.dtype, dims, data } as Tensor;
}

/**
 * The feeds of case `c`, drawn again whenever needed (reference, then student) rather than kept: each
 * (case, input) has its own random stream, so this is cheap, and adding an input shifts nothing.
 */
function caseFeeds(config: OnnxFunctionConfig, seed: string, free: Record<string, number>, c: number): Record<string, Tensor> {
  return Object.fromEntries(
    config.inputs.map((input) => [
      input.name,
      sampleTensor(input, resolveShape(input.shape, free), rng(seed, `onnx-function/case-${c}/${input.name}`)),
    ]),
  );
}

/**
 * Outputs given as `[{name}]` take dtype and shape from the reference model's signature; the catalog stores
 * the completed config, and grade() completes a config that did not come through the catalog the same way.
 */
function resolveConfig(
  config: OnnxFunctionConfig,
  privateData: ReadonlyMap<string, Uint8Array>,
): ReturnType<NonNullable<Grader["resolveConfig"]>> {
  const ref = config.reference;
  if (typeof ref !== "string" || config.outputs.every((o) => o.shape && o.dtype)) return { ok: true, config };
  const bytes = privateData.get(ref.replace(/^\.\//, ""));
  if (!bytes) return { ok: false, issues: [{ path: ["reference"], message: `the reference model ${ref} is not in the problem folder` }] };
  const read = outputsFromReference(bytes, signatureInputs(config), config.outputs, ref);
  if (!read.ok) return { ok: false, issues: [{ path: read.index < 0 ? ["reference"] : ["outputs", read.index], message: read.message }] };
  return { ok: true, config: { ...config, outputs: read.outputs } };
}

/** A reference that cannot run is the problem's fault: status error, never the student's score. */
class ReferenceFault extends Error {}

async function referenceOutputs(
  input: GradeInput<OnnxFunctionConfig, ModelAnswer>,
  spec: ModelSpec,
  feeds: (c: number) => Record<string, Tensor>,
  free: Record<string, number>,
  progress: () => void,
): Promise<Float64Array[][]> {
  const { config } = input;
  const ref = config.reference;
  const cases = Array.from({ length: config.cases }, (_, c) => c);
  if (typeof ref !== "string") {
    return cases.map((c) => {
      const asF64 = (t: Tensor): F64 => ({ dims: t.dims, data: toFloat64(t) });
      const out = computeBuiltin(ref, Object.fromEntries(Object.entries(feeds(c)).map(([k, t]) => [k, asF64(t)])));
      if (!out.data.every(Number.isFinite)) throw new ReferenceFault(`the ${ref.builtin} builtin is not finite on these inputs`);
      return [out.data];
    });
  }
  const bytes = privateFile(input, ref);
  if (!bytes) throw new ReferenceFault(`the reference model ${ref} is missing from the problem folder`);
  const runtime = input.runtime!;
  try {
    return await withSession(
      runtime,
      bytes,
      "reference",
      async (session) => {
        const bad = signatureProblem(session, spec);
        if (bad) throw new ReferenceFault(`the reference model does not match the config: ${bad}`);
        const all: Float64Array[][] = [];
        for (const c of cases) {
          const out = await runChecked(session, feeds(c), spec.outputs, free);
          all.push(spec.outputs.map((o) => toFloat64(out[o.name]!)));
          progress();
        }
        return all;
      },
      input.signal,
    );
  } catch (err) {
    if (err instanceof ModelFault) throw new ReferenceFault(`the reference model failed (${err.code}): ${err.message}`, { cause: err });
    throw err;
  }
}

/** One output of one case against the reference (numpy.allclose's rule), described without reference values. */
function compare(name: string, dims: number[], got: Float64Array, want: Float64Array, rtol: number, atol: number) {
  let outside = 0;
  let maxAbs = 0;
  let at = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= atol + rtol * Math.abs(want[i]!))) outside++;
    if (err > maxAbs) [maxAbs, at] = [err, i];
  }
  const where = `max abs error ${sig2(maxAbs)} at ${elementName(name, at, dims)}`;
  return { ok: outside === 0, text: outside === 0 ? where : `${where}; ${outside} of ${want.length} values of ${name} outside tolerance` };
}

export const onnxFunctionGrader: Grader<OnnxFunctionConfig, ModelAnswer> = {
  type: "onnx-function",
  version: "1.1.0",
  configSchema: onnxFunctionConfigSchema,
  answerSchema: modelAnswerSchema,
  modelSpec,

  answerFormat(config) {
    return modelFormat(modelSpec(config), { cases: config.cases, batch: config.batch, rtol: config.rtol, atol: config.atol });
  },

  privateFiles: (config) => (typeof config.reference === "string" ? [config.reference] : []),

  resolveConfig,

  async grade(input): Promise<GradeResult> {
    const prepared = prepare(onnxFunctionGrader, input);
    if (!prepared.ok) return prepared.result;
    const { points } = input;
    const resolved = resolveConfig(prepared.config, input.privateData);
    if (!resolved.ok)
      return problemError(points, `The problem's outputs could not be read from its reference: ${resolved.issues[0]!.message}.`);
    const config = resolved.config;
    const spec = modelSpec(config);
    const free = freeDims(
      config,
      [...spec.inputs, ...spec.outputs].map((s) => s.shape),
    );
    const inputSeed = inputSeedOf(config.seed, input.seed);
    const feeds = (c: number) => caseFeeds(config, inputSeed, free, c);
    const cases = config.cases;
    const total = cases * (typeof config.reference === "string" ? 2 : 1);
    let done = 0;
    const progress = () => input.onProgress?.(++done, total);

    let reference: Float64Array[][];
    try {
      reference = await referenceOutputs({ ...input, config }, spec, feeds, free, progress);
    } catch (err) {
      if (err instanceof ReferenceFault)
        return withStaffDetail(problemError(points, `The problem's reference could not be computed: ${err.message}.`), err.cause);
      throw err;
    }

    return gradeModel(input, spec, inputSeed, async (session) => {
      const tests = [];
      let passed = 0;
      for (let c = 0; c < cases; c++) {
        const out = await runChecked(session, feeds(c), spec.outputs, free);
        const parts = spec.outputs.map((o, k) =>
          compare(o.name, out[o.name]!.dims, toFloat64(out[o.name]!), reference[c]![k]!, config.rtol, config.atol),
        );
        const ok = parts.every((p) => p.ok);
        if (ok) passed++;
        const share = points / cases;
        tests.push(test(`case ${c + 1}`, ok ? share : 0, share, `case ${c + 1}: ${parts.map((p) => p.text).join("; ")}`));
        progress();
      }
      const summary = `${passed} of ${cases} cases match the reference within tolerance (rtol ${config.rtol}, atol ${config.atol}).`;
      return graded(points, (passed / cases) * points, summary, tests);
    });
  },
};
