import { z } from "zod";
import { checkExpression, evaluateExpression, paramsSpecSchema, sampleParams } from "./params.ts";
import { graded, prepare, problemError, test } from "./result.ts";
import type { Grader, Params } from "./types.ts";

export const numericConfigSchema = z
  .strictObject({
    /** A number, or an expression in the params (e.g. "a * b / 2"). */
    answer: z.union([z.number(), z.string().min(1)]),
    rtol: z.number().min(0).default(1e-2),
    atol: z.number().min(0).default(1e-8),
    params: paramsSpecSchema.optional(),
    /** Shown to the student (answerFormat); values are compared as plain numbers in this unit. */
    unit: z.string().min(1).optional(),
  })
  .superRefine((c, ctx) => {
    if (typeof c.answer !== "string") return;
    const problem = checkExpression(c.answer, c.params, { scalar: true });
    if (problem) ctx.addIssue({ code: "custom", path: ["answer"], message: problem });
  });
export type NumericConfig = z.output<typeof numericConfigSchema>;

export const numericAnswerSchema = z.strictObject({ value: z.number() });
export type NumericAnswer = z.output<typeof numericAnswerSchema>;

export function withinTolerance(value: number, expected: number, rtol: number, atol: number): boolean {
  return Math.abs(value - expected) <= atol + rtol * Math.abs(expected);
}

function expected(config: NumericConfig, params: Params): number {
  if (typeof config.answer === "number") return config.answer;
  const v = evaluateExpression(config.answer, params);
  if (typeof v !== "number") throw new Error("the answer expression does not evaluate to a single number");
  return v;
}

export const numericGrader: Grader<NumericConfig, NumericAnswer> = {
  type: "numeric",
  version: "1.0.0",
  configSchema: numericConfigSchema,
  answerSchema: numericAnswerSchema,

  params: (config, seed) => sampleParams(config.params, seed),

  answerFormat(config, seed) {
    return { kind: "number", ...(config.unit ? { unit: config.unit } : {}), params: sampleParams(config.params, seed) };
  },

  grade(input) {
    const prepared = prepare(numericGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config, answer } = prepared;
    const { points } = input;

    let reference: number;
    try {
      reference = expected(config, sampleParams(config.params, input.seed));
    } catch (err) {
      return problemError(points, `The reference answer could not be computed: ${(err as Error).message}`);
    }
    if (!Number.isFinite(reference)) {
      return problemError(points, "The reference answer is not finite for this variant of the problem.");
    }

    // The message never states the expected value: it would leak the answer to every variant's owner.
    const ok = withinTolerance(answer.value, reference, config.rtol, config.atol);
    const message = ok ? "Correct (within tolerance)." : "Not within tolerance of the expected value.";
    return graded(points, ok ? points : 0, message, [test("Value", ok ? points : 0, points, message)]);
  },
};
