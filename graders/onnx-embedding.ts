import { z } from "zod";
import { budgetField } from "./onnx/common.ts";
import { fixed } from "./format.ts";
import {
  batchRanges,
  batchSizeField,
  describeThresholds,
  progressCounter,
  publicSpec,
  rowsTensor,
  thresholdScore,
  thresholdsSchema,
} from "./onnx/advanced-kit.ts";
import { accuracy, fitLogistic, knnPredict, predictLinear, standardize, type Matrix } from "./onnx/linear-eval.ts";
import { readNpy } from "./onnx/npy.ts";
import { faultToResult, requireModel, runChecked, withSession } from "./onnx/session.ts";
import { dimSchema, ModelFault, modelAnswerSchema, type ModelAnswer, type ModelSession, type TensorSpec } from "./onnx/types.ts";
import { graded, prepare, problemError, test } from "./result.ts";
import type { Grader, PrivateData } from "./types.ts";

/**
 * onnx-embedding: a self-supervised encoder (SimCLR, MoCo, Barlow Twins…) judged by the linear
 * evaluation protocol. The student's model embeds a private labelled train and test split; a linear
 * classifier (and a cosine k-NN) trained on the frozen train embeddings is scored on the test split.
 */

const npyPair = z.strictObject({ x: z.string().min(1), y: z.string().min(1) });

export const embeddingConfigSchema = z.strictObject({
  /** The encoder's input; the first dimension is the batch (named), the rest must hold one sample of `x`. */
  input: z.strictObject({
    name: z.string().min(1).max(200),
    shape: z
      .array(dimSchema)
      .min(2)
      .max(8)
      .refine((s) => typeof s[0] === "string" && s.slice(1).every((d) => typeof d === "number"), {
        message: "the first dimension must be named (the batch) and the others fixed numbers",
      }),
  }),
  /** The embedding, float32 [batch, D] with D ≤ maxDim. */
  output: z.strictObject({ name: z.string().min(1).max(200) }),
  maxDim: z.number().int().min(1).max(4096).default(512),
  /** Private .npy files: x float32 [M, ...], y int64 class indices [M]. */
  train: npyPair,
  test: npyPair,
  /** Which accuracy the thresholds apply to; the other is reported for information. */
  metric: z.enum(["linear", "knn"]).default("linear"),
  k: z.number().int().min(1).max(200).default(5),
  /** L2 penalty of the linear probe on the mean cross-entropy (sklearn's C = 1 / (l2 · M)). */
  l2: z.number().min(0).default(1e-3),
  iterations: z.number().int().min(1).max(5000).default(200),
  thresholds: thresholdsSchema,
  batchSize: batchSizeField.default(256),
  budget: budgetField,
});
export type EmbeddingConfig = z.output<typeof embeddingConfigSchema>;

const batchDim = (c: EmbeddingConfig): string => c.input.shape[0] as string;
const inputSpec = (c: EmbeddingConfig): TensorSpec => ({ name: c.input.name, dtype: "float32", shape: c.input.shape });
const outputSpec = (c: EmbeddingConfig): TensorSpec => ({ name: c.output.name, dtype: "float32", shape: [batchDim(c), "D"] });

interface Split {
  x: Float32Array;
  y: Int32Array;
}

/** Loads one split; a malformed file is the problem author's error, reported as such. */
function loadSplit(files: PrivateData, pair: { x: string; y: string }, rowSize: number): Split | string {
  const xb = files.get(pair.x);
  const yb = files.get(pair.y);
  if (!xb || !yb) return `private file ${xb ? pair.y : pair.x} is missing`;
  const x = readNpy(xb, pair.x);
  const y = readNpy(yb, pair.y);
  if (!(x.data instanceof Float32Array)) return `${pair.x} must be float32`;
  const m = x.dims[0] ?? 0;
  if (x.dims.slice(1).reduce((a, b) => a * b, 1) !== rowSize)
    return `${pair.x} has shape [${x.dims}], which does not match the input shape`;
  if (y.dims.length !== 1 || y.dims[0] !== m) return `${pair.y} must be a vector of ${m} labels`;
  const labels = Int32Array.from(y.data as ArrayLike<number | bigint>, Number);
  if (labels.some((v) => v < 0 || v > 10_000)) return `${pair.y} must hold class indices 0, 1, …`;
  return { x: x.data, y: labels };
}

/** Embeds every row of `x`, batch by batch, checking the output's form. */
async function embed(session: ModelSession, config: EmbeddingConfig, x: Float32Array, tick: () => void): Promise<Matrix> {
  const rowShape = config.input.shape.slice(1) as number[];
  const rows = x.length / rowShape.reduce((a, b) => a * b, 1);
  let out: Float64Array | undefined;
  let dim = 0;
  for (const [start, end] of batchRanges(rows, config.batchSize)) {
    const feeds = { [config.input.name]: rowsTensor(x, rowShape, start, end) };
    const result = await runChecked(session, feeds, [outputSpec(config)], { [batchDim(config)]: end - start });
    const t = result[config.output.name]!;
    const d = t.dims[1]!;
    if (d > config.maxDim)
      throw new ModelFault("MODEL_BAD_OUTPUT", `The embedding has ${d} dimensions; at most ${config.maxDim} are allowed.`);
    if (out && d !== dim) throw new ModelFault("MODEL_BAD_OUTPUT", `The embedding size changed between batches (${dim}, then ${d}).`);
    dim = d;
    out ??= new Float64Array(rows * d);
    out.set(t.data as Float32Array, start * d);
    tick();
  }
  return { rows, cols: dim, data: out ?? new Float64Array(0) };
}

export const embeddingGrader: Grader<EmbeddingConfig, ModelAnswer> = {
  type: "onnx-embedding",
  version: "1.0.0",
  configSchema: embeddingConfigSchema,
  answerSchema: modelAnswerSchema,

  privateFiles: (c) => [c.train.x, c.train.y, c.test.x, c.test.y],

  modelSpec: (c) => ({ inputs: [inputSpec(c)], outputs: [outputSpec(c)], budget: c.budget }),

  answerFormat(c) {
    return {
      inputs: [publicSpec(inputSpec(c))],
      outputs: [publicSpec(outputSpec(c))],
      ...c.budget,
      maxDim: c.maxDim,
      evaluation:
        "Linear evaluation: your encoder embeds a labelled train and test split of held-out images; features are " +
        "standardised with train statistics, a multinomial logistic regression (L2, deterministic L-BFGS) is fitted on " +
        `the train embeddings, and its test accuracy is measured. A ${c.k}-nearest-neighbour classifier on cosine ` +
        "similarity is reported too.",
      metric: c.metric,
      k: c.k,
      thresholds: c.thresholds,
    };
  },

  async grade(input) {
    const prepared = prepare(embeddingGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config } = prepared;
    const { points } = input;
    const { model, runtime } = requireModel(input);

    const rowSize = (config.input.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
    const train = loadSplit(input.privateData, config.train, rowSize);
    const testSplit = loadSplit(input.privateData, config.test, rowSize);
    if (typeof train === "string") return problemError(points, `The problem's data is broken: ${train}.`);
    if (typeof testSplit === "string") return problemError(points, `The problem's data is broken: ${testSplit}.`);

    const batches = (s: Split) => Math.ceil(s.y.length / config.batchSize);
    const tick = progressCounter(batches(train) + batches(testSplit) + 1, input.onProgress);
    let features: { train: Matrix; test: Matrix; provider: string };
    try {
      features = await withSession(
        runtime,
        model,
        "submission",
        async (session) => ({
          train: await embed(session, config, train.x, tick),
          test: await embed(session, config, testSplit.x, tick),
          provider: session.executionProvider,
        }),
        input.signal,
      );
    } catch (err) {
      return faultToResult(points, err);
    }

    const classes = [...train.y, ...testSplit.y].reduce((m, v) => Math.max(m, v), 0) + 1;
    const [trainStd, testStd] = standardize(features.train, features.test);
    const probe = fitLogistic(trainStd!, train.y, classes, { l2: config.l2, iterations: config.iterations });
    const linear = accuracy(predictLinear(probe, testStd!), testSplit.y);
    const knn = accuracy(knnPredict(features.train, train.y, features.test, config.k, classes), testSplit.y);
    tick();

    const measured = config.metric === "linear" ? linear : knn;
    const fraction = thresholdScore(measured, config.thresholds);
    const scale = describeThresholds(config.thresholds);
    const n = testSplit.y.length;
    const linearMsg = `Linear-probe accuracy ${fixed(linear)} on ${n} held-out images (${features.train.cols}-d embedding, chance ≈ ${fixed(1 / classes, 2)}).`;
    const knnMsg = `${config.k}-NN (cosine) accuracy ${fixed(knn)} on ${n} held-out images.`;
    const scored = (name: string, msg: string, isMetric: boolean) =>
      isMetric ? test(name, fraction * points, points, `${msg} Scale: ${scale}.`) : test(name, 0, 0, `${msg} (for information)`);
    return {
      ...graded(
        points,
        fraction * points,
        `${config.metric === "linear" ? linearMsg : knnMsg} Score: ${Math.round(fraction * 100)}% (${scale}).`,
        [scored("Linear evaluation", linearMsg, config.metric === "linear"), scored("k-NN evaluation", knnMsg, config.metric === "knn")],
      ),
      provenance: { executionProvider: features.provider, ortVersion: runtime.ortVersion, inputSeed: input.seed },
    };
  },
};
