import { z } from "zod";
import { fixed } from "./format.ts";
import { sampleParams } from "./params.ts";
import { psychometric, stimulusLevels, type PsychometricParams } from "./psychometric.ts";
import { graded, prepare, rejected, test } from "./result.ts";
import type { Grader, Params } from "./types.ts";

/**
 * Drawing a psychometric function: the student gets their own α, β, λ (and the guess rate γ)
 * and submits ψ at the given stimulus levels. In problem.yaml:
 *
 *   grader:
 *     type: psychometric-curve
 *     form: logistic                        # or weibull (levels > 0)
 *     guess: 0.5                            # γ: 2AFC chance level
 *     levels: {min: 0, max: 10, count: 21}  # where ψ is asked for
 *     observer:                             # the student's function, drawn per student and shown
 *       alpha: {min: 3.5, max: 6.5, step: 0.5}
 *       beta: {min: 1.5, max: 3, step: 0.25}
 *       lambda: {min: 0.02, max: 0.08, step: 0.01}
 *     tolerance: 0.02                       # probability units: asymptotes and threshold
 *     slopeFactor: 1.5                      # the slope may be off by this factor either way
 *
 * The curve is graded on its shape, one share of the points per property, each with its own
 * feedback: it never decreases (and rises), its lower asymptote is γ, its upper asymptote is
 * 1 − λ, it passes the threshold value at α, and its slope around α has the right scale.
 */

const finite = z.number();
const range = z
  .strictObject({ min: finite, max: finite, step: z.number().positive().optional() })
  .refine((r) => r.min <= r.max, { message: "min is greater than max" });

export const psychometricCurveConfigSchema = z
  .strictObject({
    form: z.enum(["logistic", "weibull"]).default("logistic"),
    /** γ, the lower asymptote: 0.5 for two-alternative forced choice. */
    guess: z.number().min(0).lt(1).default(0.5),
    levels: z.strictObject({ min: finite, max: finite, count: z.number().int().min(5).max(50) }),
    observer: z.strictObject({ alpha: range, beta: range, lambda: range }),
    tolerance: z.number().positive().max(0.2).default(0.02),
    slopeFactor: z.number().gt(1).default(1.5),
  })
  .superRefine((c, ctx) => {
    let broken = false;
    const issue = (path: (string | number)[], message: string) => {
      broken = true;
      ctx.addIssue({ code: "custom", path, message });
    };
    const { alpha, beta, lambda } = c.observer;
    if (c.levels.min >= c.levels.max) return issue(["levels", "max"], "must be greater than min");
    if (beta.min <= 0) issue(["observer", "beta", "min"], "the slope must be positive");
    if (lambda.min < 0 || lambda.max >= 1 - c.guess) issue(["observer", "lambda"], `must lie in [0, 1 − guess)`);
    if (alpha.min < c.levels.min || alpha.max > c.levels.max) issue(["observer", "alpha"], "must lie within the levels");
    if (c.form === "weibull" && (c.levels.min <= 0 || alpha.min <= 0)) issue(["levels", "min"], "a Weibull function needs positive levels");
    // Grading the asymptotes only makes sense if every student's curve reaches them within the
    // levels: check the corners of the parameter box (ψ is monotone in each parameter).
    if (broken) return;
    for (const a of [alpha.min, alpha.max])
      for (const b of [beta.min, beta.max])
        for (const l of [lambda.min, lambda.max]) {
          const p = { alpha: a, beta: b, lambda: l };
          const low = psychometric(c.form, c.guess, p, c.levels.min) - c.guess;
          const high = 1 - l - psychometric(c.form, c.guess, p, c.levels.max);
          if (Math.max(low, high) > c.tolerance / 2) {
            return issue(
              ["levels"],
              `do not reach the asymptotes for α = ${a}, β = ${b}, λ = ${l} (ψ is ${fixed(low)} above γ at the lowest level and ${fixed(high)} below 1 − λ at the highest; allowed: tolerance / 2)`,
            );
          }
        }
  });
export type PsychometricCurveConfig = z.output<typeof psychometricCurveConfigSchema>;

export const psychometricCurveAnswerSchema = z.strictObject({ psi: z.array(finite).max(1000) });
export type PsychometricCurveAnswer = z.output<typeof psychometricCurveAnswerSchema>;

const levelsOf = (config: PsychometricCurveConfig): number[] => stimulusLevels({ ...config.levels, scale: "linear" });

function observerOf(config: PsychometricCurveConfig, seed: string): PsychometricParams {
  const p = sampleParams({ ...config.observer }, seed);
  return { alpha: p.alpha as number, beta: p.beta as number, lambda: p.lambda as number };
}

/** The piecewise-linear curve through (xs, ys), read at t (xs ascending, t within them). */
function interpolate(xs: number[], ys: number[], t: number): number {
  let i = 0;
  while (i < xs.length - 2 && xs[i + 1]! < t) i++;
  const [x0, x1, y0, y1] = [xs[i]!, xs[i + 1]!, ys[i]!, ys[i + 1]!];
  return y0 + ((y1 - y0) * (t - x0)) / (x1 - x0);
}

/** Where the true curve has risen `share` of the way from γ to 1 − λ (bisection; ψ is monotone). */
function quantile(config: PsychometricCurveConfig, p: PsychometricParams, share: number, lo: number, hi: number): number {
  const target = config.guess + share * (1 - config.guess - p.lambda);
  for (let k = 0; k < 100; k++) {
    const mid = (lo + hi) / 2;
    if (psychometric(config.form, config.guess, p, mid) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export const psychometricCurveGrader: Grader<PsychometricCurveConfig, PsychometricCurveAnswer> = {
  type: "psychometric-curve",
  version: "1.0.0",
  configSchema: psychometricCurveConfigSchema,
  answerSchema: psychometricCurveAnswerSchema,

  /** α, β, λ of this student's function, γ, and the levels x at which ψ is asked for. */
  params(config, seed): Params {
    return { ...observerOf(config, seed), guess: config.guess, x: levelsOf(config) };
  },

  answerFormat(config, seed) {
    return {
      kind: "psychometric-curve",
      form: config.form,
      fields: ["psi"],
      levels: levelsOf(config),
      params: psychometricCurveGrader.params!(config, seed),
    };
  },

  grade(input) {
    const prepared = prepare(psychometricCurveGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config, answer } = prepared;
    const { points } = input;
    const xs = levelsOf(config);
    const psi = answer.psi;
    if (psi.length !== xs.length) {
      return rejected(points, `Give ψ at each of the ${xs.length} stimulus levels, in order; you gave ${psi.length} value(s).`);
    }
    const outside = psi.findIndex((v) => v < 0 || v > 1);
    if (outside >= 0) {
      return rejected(points, `ψ is a probability, between 0 and 1; at x = ${xs[outside]} you gave ${psi[outside]}.`);
    }

    const p = observerOf(config, input.seed);
    const { guess: g, tolerance: tol } = config;
    const top = 1 - p.lambda;
    const ref = xs.map((x) => psychometric(config.form, g, p, x));
    const share = points / 5;
    const check = (name: string, ok: boolean, message: string) => test(name, ok ? share : 0, share, message);
    const n = xs.length - 1;

    const drop = psi.findIndex((v, i) => i < n && psi[i + 1]! < v - 1e-9);
    const rise = psi[n]! - psi[0]!;
    const monotone =
      drop >= 0
        ? check(
            "Monotone",
            false,
            `ψ falls between x = ${xs[drop]} and x = ${xs[drop + 1]} (from ${fixed(psi[drop]!)} to ${fixed(psi[drop + 1]!)}): a psychometric function never decreases as the stimulus gets stronger.`,
          )
        : rise < (ref[n]! - ref[0]!) / 2
          ? check(
              "Monotone",
              false,
              `ψ rises only ${fixed(rise)} over the levels: the function should climb from the guess rate to near 1.`,
            )
          : check("Monotone", true, `ψ never decreases and rises by ${fixed(rise)} over the levels.`);

    const lowOk = Math.abs(psi[0]! - ref[0]!) <= tol;
    const lower = check(
      "Lower asymptote",
      lowOk,
      `ψ(${xs[0]}) = ${fixed(psi[0]!)}; ` +
        (lowOk
          ? `it levels off at the guess rate γ = ${g}.`
          : `for weak stimuli a forced-choice observer still guesses right with probability γ = ${g}, so ψ should level off there (within ${tol}).`),
    );

    const highOk = Math.abs(psi[n]! - ref[n]!) <= tol;
    const upper = check(
      "Upper asymptote",
      highOk,
      `ψ(${xs[n]}) = ${fixed(psi[n]!)}; ` +
        (highOk
          ? `it levels off at 1 − λ = ${fixed(top)}.`
          : `for strong stimuli lapses still cost a share λ = ${p.lambda} of the trials, so ψ should level off at 1 − λ = ${fixed(top)} (within ${tol}).`),
    );

    const atAlpha = interpolate(xs, psi, p.alpha);
    const wantAlpha = interpolate(xs, ref, p.alpha);
    const thresholdOk = Math.abs(atAlpha - wantAlpha) <= tol;
    const where = config.form === "logistic" ? "halfway between γ and 1 − λ" : "γ + (1 − γ − λ)(1 − 1/e) for a Weibull function";
    const threshold = check(
      "Threshold",
      thresholdOk,
      `At the threshold α = ${p.alpha} your curve is at ${fixed(atAlpha)}; ` +
        (thresholdOk ? `that is ${where}.` : `it should be ${where}, ${fixed(wantAlpha)} (within ${tol}).`),
    );

    // The slope over the middle half of the rise, read the same way (linear between levels) on
    // both curves, so the spacing of the levels does not count against the student.
    const x25 = quantile(config, p, 0.25, xs[0]!, xs[n]!);
    const x75 = quantile(config, p, 0.75, xs[0]!, xs[n]!);
    const slopeOf = (ys: number[]) => (interpolate(xs, ys, x75) - interpolate(xs, ys, x25)) / (x75 - x25);
    const yours = slopeOf(psi);
    const want = slopeOf(ref);
    const ratio = yours / want;
    const slopeOk = yours > 0 && ratio >= 1 / config.slopeFactor && ratio <= config.slopeFactor;
    const slope = check(
      "Slope",
      slopeOk,
      `Between x = ${fixed(x25)} and x = ${fixed(x75)} your curve rises ${fixed(yours)} per unit of x; ` +
        (slopeOk
          ? `the right steepness for β = ${p.beta}.`
          : yours <= 0
            ? `it should rise there, ${fixed(want)} per unit for β = ${p.beta}.`
            : `it should rise ${fixed(want)} per unit for β = ${p.beta} (within a factor ${config.slopeFactor}); yours is ${ratio < 1 ? "too shallow" : "too steep"}.`),
    );

    const tests = [monotone, lower, upper, threshold, slope];
    const passed = tests.filter((t) => t.status === "passed").length;
    const score = passed * share;
    const summary =
      passed === tests.length
        ? "Your curve has the shape of your psychometric function: every property holds."
        : `${passed} of ${tests.length} properties of the curve hold; to fix: ${tests
            .filter((t) => t.status !== "passed")
            .map((t) => t.name.toLowerCase())
            .join(", ")}.`;
    return graded(points, score, summary, tests);
  },
};
