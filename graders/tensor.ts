import { z } from "zod";
import { flatten, formatShape, shapeOf, type Tensor } from "./math.ts";
import { checkExpression, evaluateExpression, paramsSpecSchema, sampleParams } from "./params.ts";
import { graded, prepare, problemError, rejected, test } from "./result.ts";
import type { Grader, Params } from "./types.ts";

const MAX_DEPTH = 8;
const MAX_ENTRIES = 1_000_000;

/**
 * Numbers nested in arrays, ragged or not (raggedness is reported by grade() as a
 * rejection with the spot, which helps a student more than a 400). Checked by hand,
 * with a depth limit, rather than by a recursive zod schema that a deeply nested body
 * could overflow.
 */
function isNumberTree(value: unknown): value is Tensor {
  let entries = 0;
  const walk = (v: unknown, depth: number): boolean => {
    if (typeof v === "number") return Number.isFinite(v) && ++entries <= MAX_ENTRIES;
    return Array.isArray(v) && depth < MAX_DEPTH && v.every((x) => walk(x, depth + 1));
  };
  return walk(value, 0);
}
const tensorSchema = z.custom<Tensor>(isNumberTree, {
  message: `must be a finite number or arrays of them, nested at most ${MAX_DEPTH} deep (at most ${MAX_ENTRIES} numbers)`,
});

export const tensorConfigSchema = z
  .strictObject({
    /** Nested arrays, or an expression in the params (e.g. "X * transpose(X)"). */
    answer: z.union([z.string().min(1), tensorSchema]),
    rtol: z.number().min(0).default(1e-4),
    atol: z.number().min(0).default(1e-6),
    params: paramsSpecSchema.optional(),
    /** fraction: the share of entries within tolerance, times points. */
    scoring: z.enum(["all-or-nothing", "fraction"]).default("all-or-nothing"),
  })
  .superRefine((c, ctx) => {
    const problem =
      typeof c.answer === "string"
        ? checkExpression(c.answer, c.params)
        : shapeOf(c.answer).ok
          ? undefined
          : "is ragged: every row must have the same length";
    if (problem) ctx.addIssue({ code: "custom", path: ["answer"], message: problem });
  });
export type TensorConfig = z.output<typeof tensorConfigSchema>;

export const tensorAnswerSchema = z.strictObject({ value: tensorSchema });
export type TensorAnswer = z.output<typeof tensorAnswerSchema>;

const reference = (config: TensorConfig, params: Params): Tensor =>
  typeof config.answer === "string" ? evaluateExpression(config.answer, params) : config.answer;

/** "value[1][2]" for flat index 5 of shape [2,3]. */
function entryName(flat: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    idx.unshift(flat % shape[k]!);
    flat = Math.floor(flat / shape[k]!);
  }
  return `value${idx.map((i) => `[${i}]`).join("")}`;
}

export const tensorGrader: Grader<TensorConfig, TensorAnswer> = {
  type: "tensor",
  version: "1.0.0",
  configSchema: tensorConfigSchema,
  answerSchema: tensorAnswerSchema,

  params: (config, seed) => sampleParams(config.params, seed),

  answerFormat(config, seed) {
    const params = sampleParams(config.params, seed);
    const shape = shapeOf(reference(config, params));
    // Shapes are public: the student needs them to answer, and they give no value away.
    return { kind: "tensor", shape: shape.ok ? shape.shape : null, params };
  },

  grade(input) {
    const prepared = prepare(tensorGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config, answer } = prepared;
    const { points } = input;

    let expected: Tensor;
    try {
      expected = reference(config, sampleParams(config.params, input.seed));
    } catch (err) {
      return problemError(points, `The reference answer could not be computed: ${(err as Error).message}`);
    }
    const want = shapeOf(expected);
    const ref = flatten(expected);
    if (!want.ok || !ref.every(Number.isFinite)) {
      return problemError(points, "The reference answer is not a finite, rectangular array for this variant.");
    }

    const got = shapeOf(answer.value);
    if (!got.ok) {
      return rejected(points, `The value is ragged: value${got.at} does not have the same shape as the entries before it.`);
    }
    if (formatShape(got.shape) !== formatShape(want.shape)) {
      const message = `Expected shape ${formatShape(want.shape)}, got ${formatShape(got.shape)}.`;
      return graded(points, 0, message, [test("Shape", 0, points, message)]);
    }

    const values = flatten(answer.value);
    const wrong: number[] = [];
    ref.forEach((r, i) => {
      if (!(Math.abs(values[i]! - r) <= config.atol + config.rtol * Math.abs(r))) wrong.push(i);
    });
    const right = ref.length - wrong.length;
    const fraction = ref.length === 0 ? 1 : right / ref.length;
    const score = config.scoring === "fraction" ? fraction * points : wrong.length === 0 ? points : 0;
    const shown = wrong.slice(0, 5).map((i) => entryName(i, want.shape));
    const message =
      wrong.length === 0
        ? `All ${ref.length} entries are within tolerance.`
        : `${right} of ${ref.length} entries are within tolerance; not within it: ${shown.join(", ")}${wrong.length > shown.length ? ", ..." : ""}.`;
    return graded(points, score, message, [test("Values", score, points, message)]);
  },
};
