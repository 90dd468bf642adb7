import { z } from "zod";
import { budgetField, toFloat64 } from "./onnx/common.ts";
import { fixed } from "./format.ts";
import { batchRanges, batchSizeField, progressCounter, publicSpec, rampSchema, rampScore, type Ramp } from "./onnx/advanced-kit.ts";
import { frechetDistance, meanCov } from "./onnx/frechet.ts";
import { argmax } from "./onnx/linear-eval.ts";
import {
  checkMemorisation,
  MAX_MEMORISATION_WORK,
  memorisationSchema,
  nearestDistances,
  type MemorisationResult,
} from "./onnx/memorisation.ts";
import { readNpy } from "./onnx/npy.ts";
import { faultToResult, requireModel, runChecked, withSession } from "./onnx/session.ts";
import { ModelFault, modelAnswerSchema, type ModelAnswer, type Tensor, type TensorSpec } from "./onnx/types.ts";
import { rng } from "./random.ts";
import { graded, prepare, problemError, test } from "./result.ts";
import type { Grader, TestResult } from "./types.ts";

/**
 * onnx-generator: VAE decoders and (conditional) GAN generators, judged through a private reference
 * classifier the way FID judges through Inception. The grader draws z ~ N(0, I) (and balanced
 * labels), the student's model makes images, the classifier gives logits and features, and the
 * score mixes conditional accuracy, confidence, class diversity and the Fréchet distance to the
 * real data's feature statistics (precomputed, so no private image leaves the server). An optional
 * memorisation check (onnx/memorisation.ts) takes credit away from samples that are copies of real images.
 */

const name = z.string().min(1).max(200);

export const generatorConfigSchema = z
  .strictObject({
    latent: z.strictObject({ name, dim: z.number().int().min(1).max(4096) }),
    /** Conditional generators: the class as an index (int64 [N]) or one-hot (float32 [N, classes]). */
    label: z.strictObject({ name, dtype: z.enum(["int64", "float32"]).default("int64") }).optional(),
    /** Images in [0, 1]; `shape` is one image, which is also the reference classifier's input. */
    output: z.strictObject({ name, shape: z.array(z.number().int().min(1)).min(1).max(4).default([1, 8, 8]) }),
    classes: z.number().int().min(2).max(1000).default(10),
    samples: z.number().int().min(10).max(100_000).default(500),
    batchSize: batchSizeField.default(250),
    /** Private ONNX file: one input (an image batch), outputs `logits` [N, classes] and `features` [N, F]. */
    classifier: z.string().min(1),
    /** Private .npy files: mean [F] and covariance [F, F] of the real data's classifier features. */
    realStats: z.strictObject({ mean: z.string().min(1), cov: z.string().min(1) }),
    parts: z
      .strictObject({
        /** Conditional only: share of images the classifier assigns to the requested class. */
        accuracy: rampSchema.optional(),
        /** Mean max-softmax probability: does each image look like some class? */
        confidence: rampSchema.optional(),
        /** Entropy of the predicted-class histogram / log(classes): 0 for one class, 1 for uniform. */
        diversity: rampSchema.optional(),
        /** Fréchet distance between generated and real feature statistics (lower is better). */
        frechet: rampSchema.optional(),
      })
      .refine((p) => Object.values(p).some(Boolean), { message: "name at least one part to score" }),
    /** Samples closer than `minDistance` to one of these private images are copies and earn nothing. */
    memorisation: memorisationSchema.optional(),
    /** Fixes the latent samples for every student (otherwise they follow the student's seed). */
    seed: z.string().min(1).optional(),
    budget: budgetField,
  })
  .superRefine((c, ctx) => {
    if (c.parts.accuracy && !c.label)
      ctx.addIssue({ code: "custom", path: ["parts", "accuracy"], message: "accuracy needs a conditional generator (a label input)" });
  });
export type GeneratorConfig = z.output<typeof generatorConfigSchema>;

type PartName = keyof GeneratorConfig["parts"];
const PARTS: Record<PartName, { title: string; what: string }> = {
  accuracy: { title: "Conditional accuracy", what: "share of images the reference classifier assigns to the requested class" },
  confidence: {
    title: "Confidence",
    what: "mean highest class probability of the reference classifier (does each image look like a digit?)",
  },
  diversity: {
    title: "Diversity",
    what: "entropy of the histogram of predicted classes divided by log(classes): 1 when all classes appear equally often",
  },
  frechet: {
    title: "Fréchet distance",
    what: "Fréchet distance between Gaussians fitted to reference-classifier features of your images and of real images",
  },
};

const specs = (c: GeneratorConfig): { inputs: TensorSpec[]; outputs: TensorSpec[] } => ({
  inputs: [
    { name: c.latent.name, dtype: "float32", shape: ["N", c.latent.dim] },
    ...(c.label ? [{ name: c.label.name, dtype: c.label.dtype, shape: c.label.dtype === "int64" ? ["N"] : ["N", c.classes] }] : []),
  ],
  outputs: [{ name: c.output.name, dtype: "float32", shape: ["N", ...c.output.shape] }],
});

/** Pixels may miss [0, 1] by rounding (a sigmoid in float16, say); beyond that the model is wrong. */
const RANGE_SLACK = 1e-3;

interface Measured {
  accuracy: number;
  confidence: number;
  diversity: number;
  frechet: number;
}

export const generatorGrader: Grader<GeneratorConfig, ModelAnswer> = {
  type: "onnx-generator",
  version: "1.1.0",
  configSchema: generatorConfigSchema,
  answerSchema: modelAnswerSchema,

  privateFiles: (c) => [c.classifier, c.realStats.mean, c.realStats.cov, ...(c.memorisation ? [c.memorisation.images] : [])],

  modelSpec: (c) => ({ ...specs(c), budget: c.budget }),

  answerFormat(c) {
    const { inputs, outputs } = specs(c);
    const weight = Object.values(c.parts).reduce((s, p) => s + (p?.weight ?? 0), 0);
    return {
      inputs: inputs.map(publicSpec),
      outputs: outputs.map(publicSpec),
      ...c.budget,
      samples: c.samples,
      latent: `z ~ N(0, I), ${c.latent.dim} values per sample`,
      ...(c.label && {
        labels: `balanced: sample i asks for class i mod ${c.classes}, ${c.label.dtype === "int64" ? "as an int64 index" : "one-hot float32"}`,
      }),
      imageRange: [0, 1],
      ...(c.memorisation && {
        memorisation: `a sample closer than ${c.memorisation.minDistance} (root-mean-square pixel difference) to a real image is a copy; copies earn nothing (up to ${Math.round(c.memorisation.allowed * 100)}% forgiven)`,
      }),
      parts: Object.fromEntries(
        (Object.entries(c.parts) as [PartName, Ramp | undefined][])
          .filter((e): e is [PartName, Ramp] => e[1] !== undefined)
          .map(([k, p]) => [k, { measures: PARTS[k].what, share: p.weight / weight, zeroAt: p.zeroAt, fullAt: p.fullAt }]),
      ),
    };
  },

  async grade(input) {
    const prepared = prepare(generatorGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config: c } = prepared;
    const { points } = input;
    const { model, runtime } = requireModel(input);

    const classifier = input.privateData.get(c.classifier);
    const muBytes = input.privateData.get(c.realStats.mean);
    const covBytes = input.privateData.get(c.realStats.cov);
    if (!classifier || !muBytes || !covBytes) return problemError(points, "The problem's reference files are missing.");
    const mu = toFloat64(readNpy(muBytes, c.realStats.mean));
    const cov = toFloat64(readNpy(covBytes, c.realStats.cov));
    if (cov.length !== mu.length * mu.length)
      return problemError(points, "The problem's feature statistics do not fit together (mean [F], covariance [F, F]).");
    const references = c.memorisation && referenceImages(input.privateData.get(c.memorisation.images), c);
    if (typeof references === "string") return problemError(points, references);

    const inputSeed = c.seed ?? input.seed;
    const n = c.samples;
    const latentRng = rng(inputSeed, "generator/latent");
    const z = Float32Array.from({ length: n * c.latent.dim }, () => latentRng.normal());
    const labels = Int32Array.from({ length: n }, (_, i) => i % c.classes);
    const pixels = c.output.shape.reduce((a, b) => a * b, 1);
    const ranges = batchRanges(n, c.batchSize);
    const tick = progressCounter(2 * ranges.length, input.onProgress);
    const { outputs } = specs(c);

    const labelTensor = (start: number, end: number): Tensor => {
      if (c.label!.dtype === "int64")
        return { dtype: "int64", dims: [end - start], data: BigInt64Array.from(labels.subarray(start, end), BigInt) };
      const data = new Float32Array((end - start) * c.classes);
      for (let i = start; i < end; i++) data[(i - start) * c.classes + labels[i]!] = 1;
      return { dtype: "float32", dims: [end - start, c.classes], data };
    };

    const images = new Float32Array(n * pixels);
    let provider: string;
    try {
      provider = await withSession(
        runtime,
        model,
        "submission",
        async (session) => {
          for (const [start, end] of ranges) {
            const feeds: Record<string, Tensor> = {
              [c.latent.name]: {
                dtype: "float32",
                dims: [end - start, c.latent.dim],
                data: z.slice(start * c.latent.dim, end * c.latent.dim),
              },
            };
            if (c.label) feeds[c.label.name] = labelTensor(start, end);
            const out = await runChecked(session, feeds, outputs, { N: end - start });
            images.set(out[c.output.name]!.data as Float32Array, start * pixels);
            tick();
          }
          return session.executionProvider;
        },
        input.signal,
      );
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of images) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      if (lo < -RANGE_SLACK || hi > 1 + RANGE_SLACK)
        throw new ModelFault(
          "MODEL_BAD_OUTPUT",
          `Output '${c.output.name}' has pixel values from ${fixed(lo)} to ${fixed(hi)}; images must lie in [0, 1] (a generator ending in tanh needs (x + 1) / 2).`,
        );
      for (let i = 0; i < images.length; i++) images[i] = Math.min(1, Math.max(0, images[i]!));
    } catch (err) {
      return faultToResult(points, err);
    }

    // The reference classifier runs like any model (sandboxed), but its faults are the problem's.
    const logits = new Float32Array(n * c.classes);
    const features = new Float64Array(n * mu.length);
    try {
      await withSession(
        runtime,
        classifier,
        "reference",
        async (session) => {
          const imageInput = session.inputNames[0]!;
          const refOutputs: TensorSpec[] = [
            { name: "logits", dtype: "float32", shape: ["N", c.classes] },
            { name: "features", dtype: "float32", shape: ["N", mu.length] },
          ];
          for (const [start, end] of ranges) {
            const feeds = {
              [imageInput]: {
                dtype: "float32" as const,
                dims: [end - start, ...c.output.shape],
                data: images.slice(start * pixels, end * pixels),
              },
            };
            const out = await runChecked(session, feeds, refOutputs, { N: end - start });
            logits.set(out.logits!.data as Float32Array, start * c.classes);
            features.set(out.features!.data as Float32Array, start * mu.length);
            tick();
          }
        },
        input.signal,
      );
    } catch (err) {
      if (err instanceof ModelFault) return problemError(points, `The problem's reference classifier failed (${err.code}): ${err.message}`);
      throw err;
    }

    const m = measure(logits, features, labels, c.classes, mu, cov);
    const memo =
      references && checkMemorisation(nearestDistances(images, n, references, references.length / pixels, pixels), c.memorisation!);
    const factor = memo ? memo.factor : 1;
    const entries = (Object.entries(c.parts) as [PartName, Ramp | undefined][]).filter((e): e is [PartName, Ramp] => e[1] !== undefined);
    const totalWeight = entries.reduce((s, [, p]) => s + p.weight, 0);
    let score = 0;
    const tests = entries.map(([k, p]) => {
      const max = (points * p.weight) / totalWeight;
      const part = rampScore(m[k], p) * max * factor;
      score += part;
      const copied = factor < 1 ? ` Copies earn nothing: this part is multiplied by ${fixed(factor)}.` : "";
      return test(
        PARTS[k].title,
        part,
        max,
        `${fixed(m[k])}: ${PARTS[k].what} (no credit at ${p.zeroAt}, full credit at ${p.fullAt}).${copied}`,
      );
    });
    if (memo) tests.push(memorisationTest(memo, n, c.memorisation!.minDistance));
    const summary =
      (memo && memo.copies > 0 ? `${memo.copies} of ${n} samples are copies of real images. ` : "") +
      `${n} samples: ` +
      [
        c.label && `conditional accuracy ${fixed(m.accuracy)}`,
        `confidence ${fixed(m.confidence)}`,
        `diversity ${fixed(m.diversity)}`,
        `Fréchet distance ${fixed(m.frechet, 2)}`,
      ]
        .filter(Boolean)
        .join(", ") +
      ".";
    return {
      ...graded(points, score, summary, tests),
      provenance: { executionProvider: provider, ortVersion: runtime.ortVersion, inputSeed },
    };
  },
};

/** The memorisation check's reference images, flat, or what is wrong with the problem's file. */
function referenceImages(bytes: Uint8Array | undefined, c: GeneratorConfig): Float64Array | string {
  if (!bytes) return "The problem's reference files are missing.";
  const t = readNpy(bytes, c.memorisation!.images);
  const pixels = c.output.shape.reduce((a, b) => a * b, 1);
  const shape = t.dims.slice(1);
  if (t.dims.length < 2 || shape.reduce((a, b) => a * b, 1) !== pixels)
    return `The problem's memorisation images have shape [${t.dims.join(", ")}]; expected [M, ${c.output.shape.join(", ")}].`;
  if (t.dims[0]! * pixels * c.samples > MAX_MEMORISATION_WORK)
    return `The problem's memorisation check would compare ${c.samples} samples with ${t.dims[0]} images; at most ${MAX_MEMORISATION_WORK} pixel comparisons.`;
  const values = toFloat64(t);
  return t.dtype === "uint8" ? values.map((v) => v / 255) : values;
}

/** A row that says whether samples were copies; it carries no points of its own (the parts are scaled). */
function memorisationTest(memo: MemorisationResult, n: number, minDistance: number): TestResult {
  const message =
    `${memo.copies} of ${n} samples lie closer than ${minDistance} (root-mean-square pixel difference) to a real image ` +
    `and count as copies of it; the median distance to the nearest real image is ${fixed(memo.medianDistance)}. ` +
    (memo.copies === 0
      ? "No sample is a copy."
      : memo.factor < 1
        ? `A generator must make new images, not return stored ones: the parts' credit is multiplied by ${fixed(memo.factor)}.`
        : "So few that they are forgiven.");
  return { ...test("Memorisation check", 0, 0, message), status: memo.factor < 1 ? "failed" : "passed" };
}

function measure(
  logits: Float32Array,
  features: Float64Array,
  labels: Int32Array,
  classes: number,
  mu: Float64Array,
  cov: Float64Array,
): Measured {
  const n = labels.length;
  const hist = new Float64Array(classes);
  let right = 0;
  let confidence = 0;
  for (let i = 0; i < n; i++) {
    const best = argmax(logits, i * classes, classes);
    hist[best]! += 1;
    if (best === labels[i]) right++;
    // Max softmax probability = 1 / Σ exp(l_c − l_max), stable for any logits.
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += Math.exp(logits[i * classes + k]! - logits[i * classes + best]!);
    confidence += 1 / sum;
  }
  let entropy = 0;
  for (const h of hist) if (h > 0) entropy -= (h / n) * Math.log(h / n);
  const gen = meanCov(features, n, mu.length);
  return {
    accuracy: right / n,
    confidence: confidence / n,
    diversity: entropy / Math.log(classes),
    frechet: frechetDistance(gen.mean, gen.cov, mu, cov),
  };
}
