import { z } from "zod";
import { fixed } from "./format.ts";
import { rng } from "./random.ts";
import { graded, prepare, rejected, test } from "./result.ts";
import type { Grader, Params } from "./types.ts";

/**
 * Comparing two representational dissimilarity matrices, the step RSA exists for: how much do
 * two systems (a brain area and a network layer, say) agree about which stimuli are alike? In
 * problem.yaml:
 *
 *   grader:
 *     type: rdm-comparison
 *     stimuli: 5          # m: each RDM is m × m, with m(m − 1)/2 distinct pairs
 *     noise: 0.35         # how far the second RDM departs from the first (std, dissimilarity units)
 *     atol: 0.005         # on the correlation
 *
 * Each student gets their own pair of RDMs (symmetric, zero diagonal, entries in (0, 2) on a
 * 0.01 grid, no ties within a triangle) and answers the Spearman correlation of their upper
 * triangles. The pair is redrawn until the usual mistakes (Pearson instead of ranks, the whole
 * matrices instead of one triangle) land more than `separation` away from the answer, so that
 * the grader can tell them apart and name them in the feedback.
 */

export const rdmComparisonConfigSchema = z.strictObject({
  stimuli: z.number().int().min(4).max(12),
  noise: z.number().positive().max(2).default(0.35),
  atol: z.number().positive().max(0.1).default(0.005),
  /** The least distance between the answer and each recognised mistake. */
  separation: z.number().positive().max(0.5).default(0.03),
});
export type RdmComparisonConfig = z.output<typeof rdmComparisonConfigSchema>;

export const rdmComparisonAnswerSchema = z.strictObject({ value: z.number() });
export type RdmComparisonAnswer = z.output<typeof rdmComparisonAnswerSchema>;

/** Ranks 1..n, ties sharing the mean of the ranks they span (as scipy.stats.rankdata does). */
export function midranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

export function pearson(a: readonly number[], b: readonly number[]): number {
  const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const [ma, mb] = [mean(a), mean(b)];
  let ab = 0;
  let aa = 0;
  let bb = 0;
  a.forEach((x, i) => {
    const [da, db] = [x - ma, b[i]! - mb];
    ab += da * db;
    aa += da * da;
    bb += db * db;
  });
  return ab / Math.sqrt(aa * bb);
}

export const spearman = (a: readonly number[], b: readonly number[]): number => pearson(midranks(a), midranks(b));

/** Entries above the diagonal, row by row. */
export function upperTriangle(m: readonly (readonly number[])[]): number[] {
  return m.flatMap((row, i) => row.slice(i + 1));
}

const grid = (x: number) => Math.round(x * 100) / 100;

/** The value asked for and the values of the mistakes the feedback recognises. */
export function comparisons(A: number[][], B: number[][]) {
  const [a, b] = [upperTriangle(A), upperTriangle(B)];
  return {
    answer: spearman(a, b),
    mistakes: [
      { value: pearson(a, b), says: "the Pearson correlation of the dissimilarities; RSA compares their ranks (Spearman)" },
      {
        value: spearman(A.flat(), B.flat()),
        says: "the rank correlation of the whole matrices; the diagonal (always 0) and the mirrored lower triangle only inflate it",
      },
      {
        value: pearson(A.flat(), B.flat()),
        says: "the Pearson correlation of the whole matrices; use the upper triangles and their ranks",
      },
    ],
  };
}

/** This student's two RDMs. */
export function drawRdms(config: RdmComparisonConfig, seed: string): { A: number[][]; B: number[][] } {
  const m = config.stimuli;
  const pairs = (m * (m - 1)) / 2;
  const values = Array.from({ length: 195 }, (_, i) => grid(0.03 + i * 0.01)); // 0.03 … 1.97
  const square = (upper: number[]) => {
    const out = Array.from({ length: m }, () => new Array<number>(m).fill(0));
    let k = 0;
    for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) out[i]![j] = out[j]![i] = upper[k++]!;
    return out;
  };
  let last: { A: number[][]; B: number[][] } | undefined;
  for (let attempt = 0; attempt < 200; attempt++) {
    const r = rng(seed, `rdm-comparison/${attempt}`);
    const a = r.shuffle(values).slice(0, pairs);
    const b = a.map((x) => grid(Math.min(1.99, Math.max(0.01, x + r.normal(0, config.noise)))));
    if (new Set(b).size < b.length) continue;
    last = { A: square(a), B: square(b) };
    const { answer, mistakes } = comparisons(last.A, last.B);
    if (mistakes.every((w) => Math.abs(w.value - answer) > config.separation)) return last;
  }
  // Practically unreachable (see tests); a pair without the separation is still a valid problem.
  return last ?? { A: square(values.slice(0, pairs)), B: square(values.slice(1, pairs + 1)) };
}

export const rdmComparisonGrader: Grader<RdmComparisonConfig, RdmComparisonAnswer> = {
  type: "rdm-comparison",
  version: "1.0.0",
  configSchema: rdmComparisonConfigSchema,
  answerSchema: rdmComparisonAnswerSchema,

  params(config, seed): Params {
    return drawRdms(config, seed);
  },

  answerFormat(config, seed) {
    return { kind: "number", params: rdmComparisonGrader.params!(config, seed) };
  },

  grade(input) {
    const prepared = prepare(rdmComparisonGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config, answer } = prepared;
    const { points } = input;
    if (answer.value < -1 || answer.value > 1) {
      return rejected(points, `A correlation lies between −1 and 1; you gave ${answer.value}.`);
    }
    const { A, B } = drawRdms(config, input.seed);
    const { answer: expected, mistakes } = comparisons(A, B);
    const error = Math.abs(answer.value - expected);
    let message: string;
    if (error <= config.atol)
      message = `Correct: ${fixed(answer.value, 4)} is within ${config.atol} of the Spearman correlation of the upper triangles.`;
    else {
      const nearest = [...mistakes].sort((a, b) => Math.abs(answer.value - a.value) - Math.abs(answer.value - b.value))[0]!;
      const near = Math.abs(answer.value - nearest.value) <= config.atol ? nearest : undefined;
      message = near
        ? `Not the value asked for: ${fixed(answer.value, 4)} is ${near.says}.`
        : `Not within ${config.atol} of the comparison asked for.`;
    }
    const score = error <= config.atol ? points : 0;
    return graded(points, score, message, [test("Correlation", score, points, message)]);
  },
};
