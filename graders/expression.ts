import { z } from "zod";
import { compileExpression, MAX_EXPRESSION_LENGTH, type Tensor } from "./math.ts";
import { checkExpression, namedRecord, paramsSpecSchema, sampleParams } from "./params.ts";
import { rng } from "./random.ts";
import { graded, prepare, problemError, rejected, test } from "./result.ts";
import type { Grader } from "./types.ts";

const rangeSchema = z
  .strictObject({ min: z.number(), max: z.number() })
  .refine((r) => r.min < r.max, { message: "min must be less than max" });

export const expressionConfigSchema = z
  .strictObject({
    /** The reference formula in the variables (and params, if any). */
    answer: z.string().min(1),
    variables: namedRecord(rangeSchema).refine((v) => Object.keys(v).length > 0, {
      message: "declare at least one variable",
    }),
    samples: z.number().int().min(1).max(1000).default(20),
    rtol: z.number().min(0).default(1e-6),
    atol: z.number().min(0).default(1e-9),
    params: paramsSpecSchema.optional(),
  })
  .superRefine((c, ctx) => {
    const clash = Object.keys(c.variables).filter((v) => c.params && Object.hasOwn(c.params, v));
    if (clash.length) ctx.addIssue({ code: "custom", path: ["variables"], message: `also declared as params: ${clash.join(", ")}` });
    const middle = Object.fromEntries(Object.entries(c.variables).map(([k, r]) => [k, (r.min + r.max) / 2]));
    const problem = checkExpression(c.answer, c.params, { scalar: true, finite: false, variables: middle });
    if (problem) ctx.addIssue({ code: "custom", path: ["answer"], message: problem });
  });
export type ExpressionConfig = z.output<typeof expressionConfigSchema>;

export const expressionAnswerSchema = z.strictObject({ expression: z.string().max(MAX_EXPRESSION_LENGTH) });
export type ExpressionAnswer = z.output<typeof expressionAnswerSchema>;

/** Draws tried per requested sample before giving up on points where the reference is finite. */
const DRAWS_PER_SAMPLE = 5;

export const expressionGrader: Grader<ExpressionConfig, ExpressionAnswer> = {
  type: "expression",
  version: "1.0.0",
  configSchema: expressionConfigSchema,
  answerSchema: expressionAnswerSchema,

  params: (config, seed) => sampleParams(config.params, seed),

  answerFormat(config, seed) {
    return { kind: "expression", variables: Object.keys(config.variables), params: sampleParams(config.params, seed) };
  },

  grade(input) {
    const prepared = prepare(expressionGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config, answer } = prepared;
    const { points, seed } = input;
    const variables = Object.keys(config.variables);

    // Students write formulas in the declared variables only: scalar functions, no matrices.
    const student = compileExpression(answer.expression, { symbols: variables });
    if (!student.ok) return rejected(points, student.message);
    const params = sampleParams(config.params, seed);
    const reference = compileExpression(config.answer, { symbols: [...Object.keys(params), ...variables], matrix: true });
    if (!reference.ok) return problemError(points, `The reference expression is invalid: ${reference.message}`);

    const r = rng(seed, "expression/points");
    let compared = 0;
    let mismatch: Record<string, number> | undefined;
    for (let draw = 0; draw < config.samples * DRAWS_PER_SAMPLE && compared < config.samples; draw++) {
      const point = Object.fromEntries(variables.map((v) => [v, r.uniform(config.variables[v]!.min, config.variables[v]!.max)]));
      let expected: Tensor;
      try {
        expected = reference.evaluate(new Map(Object.entries({ ...params, ...point })));
      } catch (err) {
        return problemError(points, `The reference expression could not be evaluated: ${(err as Error).message}`);
      }
      // Outside the reference's domain (log of a negative, a pole): nothing to compare here.
      if (typeof expected !== "number" || !Number.isFinite(expected)) continue;
      compared++;
      let got: Tensor;
      try {
        got = student.evaluate(new Map(Object.entries(point)));
      } catch (err) {
        return rejected(points, `Your expression could not be evaluated: ${(err as Error).message}`);
      }
      const ok =
        typeof got === "number" && Number.isFinite(got) && Math.abs(got - expected) <= config.atol + config.rtol * Math.abs(expected);
      if (!ok) {
        mismatch = point;
        break;
      }
    }
    if (compared === 0) {
      return problemError(points, "The reference expression is not finite anywhere it was sampled; check the variable ranges.");
    }

    if (mismatch) {
      // Where it differs, but not the expected value there: that would hand out the answer.
      const where = Object.entries(mismatch)
        .map(([k, v]) => `${k} = ${Number(v.toPrecision(4))}`)
        .join(", ");
      const message = `Not equivalent to the expected expression (it differs at ${where}).`;
      return graded(points, 0, message, [test("Equivalent expression", 0, points, message)]);
    }
    const message = `Equivalent to the expected expression (checked at ${compared} random points).`;
    return graded(points, points, message, [test("Equivalent expression", points, points, message)]);
  },
};
