import { z } from "zod";
import type { Tensor, TensorSpec } from "./types.ts";

/**
 * Pieces shared by the evaluation-style model graders (onnx-embedding, onnx-generator, onnx-detector):
 * score scales, batching and progress.
 */

/** A batch size field: one run() per batch keeps memory bounded and gives progress to report. */
export const batchSizeField = z.number().int().min(1).max(4096);

/**
 * Step scores: the highest threshold whose `min` the measured value reaches gives its `score`, a
 * fraction of the points; below every threshold scores 0.
 */
export const thresholdsSchema = z
  .array(z.strictObject({ min: z.number(), score: z.number().min(0).max(1) }))
  .min(1)
  .superRefine((list, ctx) => {
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.min <= list[i - 1]!.min)
        ctx.addIssue({ code: "custom", path: [i, "min"], message: "thresholds must be listed by increasing min" });
      if (list[i]!.score < list[i - 1]!.score)
        ctx.addIssue({ code: "custom", path: [i, "score"], message: "a higher threshold cannot give a lower score" });
    }
  });
export type Thresholds = z.output<typeof thresholdsSchema>;

export function thresholdScore(value: number, thresholds: Thresholds): number {
  let score = 0;
  for (const t of thresholds) if (value >= t.min) score = t.score;
  return score;
}

/** "at least 0.8 → 50%, at least 0.95 → 100%": what the student is told the scale is. */
export const describeThresholds = (thresholds: Thresholds): string =>
  thresholds.map((t) => `at least ${t.min} → ${Math.round(t.score * 100)}%`).join(", ");

/**
 * A part of a weighted score that grows linearly from 0 at `zeroAt` to 1 at `fullAt` and is clamped
 * outside; `fullAt < zeroAt` means lower is better (a distance).
 */
export const rampSchema = z
  .strictObject({ weight: z.number().positive(), zeroAt: z.number(), fullAt: z.number() })
  .refine((r) => r.zeroAt !== r.fullAt, { message: "zeroAt and fullAt must differ", path: ["fullAt"] });
export type Ramp = z.output<typeof rampSchema>;

export function rampScore(value: number, r: Pick<Ramp, "zeroAt" | "fullAt">): number {
  const t = (value - r.zeroAt) / (r.fullAt - r.zeroAt);
  return Math.min(1, Math.max(0, t));
}

/** [start, end) row ranges of `batchSize` covering `total` rows. */
export function batchRanges(total: number, batchSize: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < total; start += batchSize) out.push([start, Math.min(total, start + batchSize)]);
  return out;
}

/** Reports progress in units (batches) across several phases of one evaluation. */
export function progressCounter(total: number, onProgress?: (done: number, total: number) => void): () => void {
  let done = 0;
  onProgress?.(0, total);
  return () => onProgress?.(++done, total);
}

/** A float32 tensor from a row range of a row-major buffer (copied: the runtime may transfer it). */
export function rowsTensor(data: Float32Array, rowShape: readonly number[], start: number, end: number): Tensor {
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  return { dtype: "float32", dims: [end - start, ...rowShape], data: data.slice(start * rowSize, end * rowSize) };
}

/** Specs as answerFormat shows them: name, dtype and shape only. */
export const publicSpec = (s: TensorSpec): TensorSpec => ({ name: s.name, dtype: s.dtype, shape: [...s.shape] });
