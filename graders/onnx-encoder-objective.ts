import { z } from "zod";
import { budgetField, toFloat64 } from "./onnx/common.ts";
import { sig2 } from "./format.ts";
import { rng } from "./random.ts";
import { graded, prepare, problemError, test } from "./result.ts";
import type { GradeInput, Grader } from "./types.ts";
import { fileField, gradeModel, inputSeedOf, modelFormat, privateFile, seedField } from "./onnx/basic-model.ts";
import { ista, objectives, randomDictionary, sparseSignals } from "./onnx/basic-ista.ts";
import { readNpy } from "./onnx/npy.ts";
import { runChecked } from "./onnx/session.ts";
import { modelAnswerSchema, type Dim, type ModelAnswer, type ModelSpec } from "./onnx/types.ts";

/**
 * onnx-encoder-objective (sparse coding): the student's encoder maps signals x [N, d] (and the
 * dictionary D [d, k]) to codes h [N, k]. The score compares the mean LASSO objective
 * ½‖x − D h‖² + λ‖h‖₁ with that of ISTA run to convergence: there is no single right code to match,
 * only better and worse ones.
 */

const dimsField = z.tuple([z.number().int().min(1).max(4096), z.number().int().min(1).max(4096)]);
const nameField = z.string().min(1).max(200);
/** ISTA costs count · k² · iterations multiply-adds; beyond this a config would stall the worker. */
const MAX_ISTA_WORK = 4e9;

export const onnxEncoderConfigSchema = z
  .strictObject({
    /** A .npy file [d, k] of the problem folder (shape optional, shown to students when given), or generated. */
    dictionary: z.union([
      fileField,
      z.strictObject({ file: fileField, shape: dimsField.optional() }),
      /** Gaussian, unit-norm columns; without a seed each student gets their own (it is a model input). */
      z.strictObject({ shape: dimsField, seed: seedField }),
    ]),
    input: nameField.default("x"),
    /** The dictionary's input name; null when the model holds D itself (then D must be known to students). */
    dictionaryInput: nameField.nullable().default("D"),
    output: nameField.default("h"),
    signals: z
      .strictObject({
        count: z.number().int().min(1).max(100_000).default(256),
        /** Nonzero entries of each true code. */
        sparsity: z.number().int().min(1).default(3),
        /** Std of the Gaussian noise added to D h. */
        noise: z.number().min(0).default(0.01),
      })
      .prefault({}),
    lambda: z.number().positive(),
    ista: z.strictObject({ iterations: z.number().int().min(1).max(100_000).default(500) }).prefault({}),
    /** Objective ratio student / ISTA: full marks at or below `full`, none at or above `zero`, linear between. */
    scoring: z
      .strictObject({ full: z.number().positive().default(1.05), zero: z.number().positive().default(2) })
      .prefault({})
      .refine((s) => s.full < s.zero, "needs full < zero"),
    /** Share of code entries with |h| < threshold; weight > 0 moves that share of the points to it. */
    sparsity: z.strictObject({ threshold: z.number().positive().default(1e-3), weight: z.number().min(0).max(1).default(0) }).prefault({}),
    batchSize: z.number().int().min(1).max(65536).default(256),
    seed: seedField,
    budget: budgetField,
  })
  .superRefine((c, ctx) => {
    const names = [c.input, c.dictionaryInput, c.output].filter((n) => n !== null);
    if (new Set(names).size !== names.length)
      ctx.addIssue({ code: "custom", path: ["output"], message: "input, dictionaryInput and output need distinct names" });
    const dims = knownDims(c);
    if (dims && c.signals.sparsity > dims[1])
      ctx.addIssue({ code: "custom", path: ["signals", "sparsity"], message: `at most k = ${dims[1]} nonzeros per code` });
    if (dims && c.signals.count * dims[1] ** 2 * c.ista.iterations > MAX_ISTA_WORK)
      ctx.addIssue({
        code: "custom",
        path: ["ista", "iterations"],
        message: "count · k² · iterations is too much work for the reference solver",
      });
  });
export type OnnxEncoderConfig = z.output<typeof onnxEncoderConfigSchema>;

/** [d, k] when the config states them; a bare file name leaves them to the file. */
const knownDims = (c: Pick<OnnxEncoderConfig, "dictionary">): [number, number] | undefined =>
  typeof c.dictionary === "string" ? undefined : c.dictionary.shape;

function modelSpec(config: OnnxEncoderConfig): ModelSpec {
  const [d, k]: Dim[] = knownDims(config) ?? ["d", "k"];
  const inputs = [{ name: config.input, dtype: "float32" as const, shape: ["N", d!] }];
  if (config.dictionaryInput !== null) inputs.push({ name: config.dictionaryInput, dtype: "float32", shape: [d!, k!] });
  return { inputs, outputs: [{ name: config.output, dtype: "float32", shape: ["N", k!] }], budget: config.budget };
}

class ProblemFault extends Error {}

/** The dictionary as float32 values (what the model is fed) in a Float64Array, with its dims. */
function loadDictionary(input: GradeInput<unknown, unknown>, config: OnnxEncoderConfig, inputSeed: string) {
  const dict = config.dictionary;
  if (typeof dict !== "string" && !("file" in dict)) {
    const [d, k] = dict.shape;
    return { d, k, D: randomDictionary(d, k, rng(inputSeedOf(dict.seed, inputSeed), "onnx-encoder/dictionary")) };
  }
  const file = typeof dict === "string" ? dict : dict.file;
  const bytes = privateFile(input, file);
  if (!bytes) throw new ProblemFault(`the dictionary ${file} is missing from the problem folder`);
  let t;
  try {
    t = readNpy(bytes, file);
  } catch (e) {
    throw new ProblemFault((e as Error).message);
  }
  const want = knownDims(config);
  if (
    t.dims.length !== 2 ||
    (want && (t.dims[0] !== want[0] || t.dims[1] !== want[1])) ||
    !(t.dtype === "float32" || t.dtype === "float64")
  )
    throw new ProblemFault(`${file} is ${t.dtype} [${t.dims.join(", ")}]; expected float32 [${want?.join(", ") ?? "d, k"}]`);
  return { d: t.dims[0]!, k: t.dims[1]!, D: Float64Array.from(t.data as Float32Array, Math.fround) };
}

const mean = (a: Float64Array): number => a.reduce((s, v) => s + v, 0) / a.length;
const sparseShare = (h: Float64Array, threshold: number): number => h.reduce((n, v) => n + (Math.abs(v) < threshold ? 1 : 0), 0) / h.length;
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

export const onnxEncoderObjectiveGrader: Grader<OnnxEncoderConfig, ModelAnswer> = {
  type: "onnx-encoder-objective",
  version: "1.1.0",
  configSchema: onnxEncoderConfigSchema,
  answerSchema: modelAnswerSchema,
  modelSpec,

  answerFormat(config) {
    const { lambda, scoring, sparsity } = config;
    return modelFormat(modelSpec(config), { lambda, signals: config.signals.count, scoring, sparsity });
  },

  privateFiles: (config) =>
    typeof config.dictionary === "string" ? [config.dictionary] : "file" in config.dictionary ? [config.dictionary.file] : [],

  async grade(input) {
    const prepared = prepare(onnxEncoderObjectiveGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config } = prepared;
    const { points } = input;
    const inputSeed = inputSeedOf(config.seed, input.seed);

    let dict: ReturnType<typeof loadDictionary>;
    try {
      dict = loadDictionary(input, config, inputSeed);
      if (config.signals.sparsity > dict.k) throw new ProblemFault(`signals.sparsity exceeds k = ${dict.k}`);
    } catch (e) {
      if (e instanceof ProblemFault) return problemError(points, `The problem's dictionary is unusable: ${e.message}.`);
      throw e;
    }
    const { d, k, D } = dict;
    const { lambda } = config;
    const count = config.signals.count;
    const x = sparseSignals(D, d, k, config.signals, rng(inputSeed, "onnx-encoder/signals"));
    const hRef = ista(x, D, d, k, lambda, config.ista.iterations);
    const refObjective = mean(objectives(x, hRef, D, d, k, lambda));
    if (!(refObjective > 0)) return problemError(points, "The reference objective is zero: the signals need noise or a larger lambda.");

    const spec = modelSpec(config);
    const D32 = Float32Array.from(D);
    return gradeModel(input, spec, inputSeed, async (session) => {
      const h = new Float64Array(count * k);
      const batches = Math.ceil(count / config.batchSize);
      for (let b = 0; b < batches; b++) {
        const start = b * config.batchSize;
        const n = Math.min(config.batchSize, count - start);
        const feeds = {
          [config.input]: { dtype: "float32" as const, dims: [n, d], data: Float32Array.from(x.subarray(start * d, (start + n) * d)) },
        };
        if (config.dictionaryInput !== null) feeds[config.dictionaryInput] = { dtype: "float32", dims: [d, k], data: D32 };
        const out = await runChecked(session, feeds, spec.outputs, { N: n, d, k });
        h.set(toFloat64(out[config.output]!), start * k);
        input.onProgress?.(b + 1, batches);
      }

      const studentObjective = mean(objectives(x, h, D, d, k, lambda));
      const ratio = studentObjective / refObjective;
      const { full, zero } = config.scoring;
      const fraction = ratio <= full ? 1 : ratio >= zero ? 0 : (zero - ratio) / (zero - full);
      const w = config.sparsity.weight;
      const objectiveMax = (1 - w) * points;
      const objectiveTest = test(
        "Objective",
        fraction * objectiveMax,
        objectiveMax,
        `Mean objective ½‖x − Dh‖² + λ‖h‖₁ over ${count} signals: ${ratio.toFixed(3)}× that of ISTA (${config.ista.iterations} iterations). ` +
          `Full marks at ≤ ${full}×, none at ≥ ${zero}×.`,
      );

      const { threshold } = config.sparsity;
      const share = sparseShare(h, threshold);
      const refShare = sparseShare(hRef, threshold);
      // Sparse but useless codes (all zeros) earn no sparsity credit: it only counts once the objective does.
      const sparsityFraction = fraction > 0 && refShare > 0 ? Math.min(1, share / refShare) : 0;
      const sparsityText = `${pct(share)} of code entries have |h| < ${threshold} (ISTA: ${pct(refShare)}).`;
      const sparsityTest = test(
        "Sparsity",
        sparsityFraction * w * points,
        w * points,
        w === 0
          ? `${sparsityText} Informational.`
          : fraction > 0
            ? sparsityText
            : `${sparsityText} No credit while the objective earns none.`,
      );

      const parts = (codes: Float64Array) => {
        const total = mean(objectives(x, codes, D, d, k, lambda));
        const l1 = (lambda * codes.reduce((s, v) => s + Math.abs(v), 0)) / count;
        return `objective ${sig2(total)} = reconstruction ${sig2(total - l1)} + λ‖h‖₁ ${sig2(l1)}`;
      };
      const breakdown = {
        ...test("Objective breakdown (staff)", 0, 0, `Means per signal. Student: ${parts(h)}. ISTA: ${parts(hRef)}.`),
        visibility: "hidden" as const,
      };

      const score = objectiveTest.score + sparsityTest.score;
      return graded(points, score, `Objective ratio to ISTA ${ratio.toFixed(3)}× (full marks at ≤ ${full}×).`, [
        objectiveTest,
        sparsityTest,
        breakdown,
      ]);
    });
  },
};
