import { z } from "zod";
import { fixed, tidy } from "./format.ts";
import { rng } from "./random.ts";
import { graded, prepare, rejected, test } from "./result.ts";
import type { Grader, Params } from "./types.ts";

/**
 * Fitting a psychometric function to one's own data. In problem.yaml:
 *
 *   grader:
 *     type: psychometric
 *     form: logistic                      # or weibull (levels > 0)
 *     guess: 0.5                          # γ: 2AFC chance level
 *     levels: {min: 1, max: 8, count: 8}  # or a list [1, 2, 4, 8]; scale: log spaces them evenly in log x
 *     trials: 40                          # per level
 *     observer:                           # the simulated observer's true parameters, drawn per student
 *       alpha: {min: 3, max: 6}
 *       beta: {min: 0.8, max: 2.5}
 *       lambda: {min: 0, max: 0.05}
 *     lapse: {min: 0, max: 0.1}           # bounds on the fitted λ (the student's and the grader's)
 *     fullWithin: 0.5                     # nats: full marks when ΔLL ≤ this
 *     zeroAt: 5                           # nats: nothing when ΔLL ≥ this; linear between
 *
 * ψ(x) = γ + (1 − γ − λ) F(x; α, β), with F(x) = 1 / (1 + exp(−β (x − α))) (logistic) or
 * F(x) = 1 − exp(−(x / α)^β) (Weibull). Each student sees the levels x, trials n and correct
 * counts k simulated from an observer drawn with their seed, and answers {alpha, beta, lambda}.
 * The score compares the log-likelihood of those parameters on the student's data with the
 * maximum the grader's own deterministic fit (grid, then Nelder–Mead, within the lapse bounds)
 * finds: ΔLL = LL_best − LL_student (floored at 0).
 */

// zod 4 numbers are finite: Infinity and NaN fail.
const finite = z.number();
const range = (extra?: (r: { min: number; max: number }, ctx: z.RefinementCtx) => void) =>
  z.strictObject({ min: finite, max: finite }).superRefine((r, ctx) => {
    if (r.min > r.max) ctx.addIssue({ code: "custom", message: `min (${r.min}) is greater than max (${r.max})` });
    extra?.(r, ctx);
  });

const MAX_LEVELS = 50;
const levelsSchema = z.union([
  z.array(finite).min(2).max(MAX_LEVELS),
  z.strictObject({
    min: finite,
    max: finite,
    count: z.number().int().min(2).max(MAX_LEVELS),
    scale: z.enum(["linear", "log"]).default("linear"),
  }),
]);

export const psychometricConfigSchema = z
  .strictObject({
    form: z.enum(["logistic", "weibull"]),
    /** γ, the lower asymptote: 0.5 for two-alternative forced choice, 1/m for m alternatives. */
    guess: z.number().min(0).lt(1).default(0.5),
    levels: levelsSchema,
    /** Trials per level. */
    trials: z.number().int().min(1).max(10_000),
    /** Ranges the simulated observer's true parameters are drawn from (uniformly, per student). */
    observer: z.strictObject({
      alpha: range(),
      beta: range((r, ctx) => {
        if (r.min <= 0) ctx.addIssue({ code: "custom", path: ["min"], message: "the slope must be positive" });
      }),
      lambda: range(),
    }),
    /** Bounds on the lapse rate λ of a fit, the student's and the grader's. */
    lapse: range((r, ctx) => {
      if (r.min < 0) ctx.addIssue({ code: "custom", path: ["min"], message: "a lapse rate cannot be negative" });
    }).default({ min: 0, max: 0.1 }),
    /** ΔLL (nats) up to which the fit earns full marks. */
    fullWithin: z.number().min(0).default(0.5),
    /** ΔLL (nats) from which the fit earns nothing; linear in between. */
    zeroAt: z.number().positive().default(5),
  })
  .superRefine((c, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    if (c.lapse.max >= 1 - c.guess) {
      issue(["lapse", "max"], `must be below 1 − guess (${1 - c.guess}), or ψ would not rise above chance`);
    }
    const { lambda } = c.observer;
    if (lambda.min < c.lapse.min || lambda.max > c.lapse.max) {
      issue(
        ["observer", "lambda"],
        `must lie within the lapse bounds [${c.lapse.min}, ${c.lapse.max}], or the true observer could not be fitted`,
      );
    }
    if (c.fullWithin >= c.zeroAt) issue(["zeroAt"], `must be greater than fullWithin (${c.fullWithin})`);
    if (!Array.isArray(c.levels) && c.levels.min >= c.levels.max) issue(["levels", "max"], "must be greater than min");
    const positiveLevels = Array.isArray(c.levels) ? Math.min(...c.levels) > 0 : c.levels.min > 0;
    if (!Array.isArray(c.levels) && c.levels.scale === "log" && !positiveLevels) {
      issue(["levels", "min"], "must be positive for a log scale");
    }
    if (c.form === "weibull") {
      if (!positiveLevels) issue(["levels"], "a Weibull function needs positive stimulus levels");
      if (c.observer.alpha.min <= 0) issue(["observer", "alpha", "min"], "a Weibull threshold must be positive");
    }
  });
export type PsychometricConfig = z.output<typeof psychometricConfigSchema>;

export const psychometricAnswerSchema = z.strictObject({ alpha: finite, beta: finite, lambda: finite });
export type PsychometricAnswer = z.output<typeof psychometricAnswerSchema>;

export interface PsychometricData {
  x: number[];
  n: number[];
  k: number[];
}
export interface PsychometricParams {
  alpha: number;
  beta: number;
  lambda: number;
}
type Form = PsychometricConfig["form"];

export function stimulusLevels(levels: PsychometricConfig["levels"]): number[] {
  if (Array.isArray(levels)) return [...levels];
  const { min, max, count, scale } = levels;
  return Array.from({ length: count }, (_, i) => {
    const t = i / (count - 1);
    // 4 significant digits, so that the level a statement shows is the level the grader uses.
    return tidy(scale === "log" ? min * (max / min) ** t : min + (max - min) * t, 4);
  });
}

/** ψ(x) = γ + (1 − γ − λ) F(x; α, β). */
export function psychometric(form: Form, guess: number, p: PsychometricParams, x: number): number {
  const F = form === "logistic" ? 1 / (1 + Math.exp(-p.beta * (x - p.alpha))) : x <= 0 ? 0 : 1 - Math.exp(-((x / p.alpha) ** p.beta));
  return guess + (1 - guess - p.lambda) * F;
}

/** Probabilities are kept this far from 0 and 1 so that a confident miss costs a lot, not −∞. */
const EPS = 1e-12;

/** Σ k log ψ + (n − k) log(1 − ψ): the Bernoulli log-likelihood (binomial coefficients left out: they do not depend on the parameters). */
export function logLikelihood(form: Form, guess: number, p: PsychometricParams, data: PsychometricData): number {
  let ll = 0;
  data.x.forEach((x, i) => {
    const psi = Math.min(1 - EPS, Math.max(EPS, psychometric(form, guess, p, x)));
    const k = data.k[i]!;
    const n = data.n[i]!;
    ll += k * Math.log(psi) + (n - k) * Math.log(1 - psi);
  });
  return ll;
}

/** The student's data: levels, trials and correct counts of an observer drawn from the config's ranges with their seed. */
export function simulate(config: PsychometricConfig, seed: string): PsychometricData & { truth: PsychometricParams } {
  const r = rng(seed, "psychometric/observer");
  const draw = ({ min, max }: { min: number; max: number }) => r.uniform(min, max);
  const truth = { alpha: draw(config.observer.alpha), beta: draw(config.observer.beta), lambda: draw(config.observer.lambda) };
  const x = stimulusLevels(config.levels);
  const n = x.map(() => config.trials);
  const responses = rng(seed, "psychometric/responses");
  const k = x.map((level) => {
    const p = psychometric(config.form, config.guess, truth, level);
    let correct = 0;
    for (let t = 0; t < config.trials; t++) if (responses.next() < p) correct++;
    return correct;
  });
  return { x, n, k, truth };
}

/** Minimises f from `start` (Nelder–Mead, standard coefficients); deterministic. */
export function nelderMead(f: (v: number[]) => number, start: number[], steps: number[], maxIter = 2000): { x: number[]; f: number } {
  const dim = start.length;
  let simplex = [start, ...start.map((_, i) => start.map((v, j) => (i === j ? v + steps[i]! : v)))].map((x) => ({ x, f: f(x) }));
  const combine = (a: number[], b: number[], t: number) => a.map((v, i) => v + t * (b[i]! - v));
  for (let iter = 0; iter < maxIter; iter++) {
    simplex.sort((a, b) => a.f - b.f);
    const best = simplex[0]!;
    const worst = simplex[dim]!;
    const size = Math.max(...simplex.map((s) => Math.max(...s.x.map((v, i) => Math.abs(v - best.x[i]!)))));
    if (worst.f - best.f < 1e-10 && size < 1e-7) break;
    const centroid = start.map((_, i) => simplex.slice(0, dim).reduce((s, p) => s + p.x[i]!, 0) / dim);
    const point = (t: number) => {
      const x = combine(centroid, worst.x, t);
      return { x, f: f(x) };
    };
    const reflected = point(-1);
    if (reflected.f < best.f) {
      const expanded = point(-2);
      simplex[dim] = expanded.f < reflected.f ? expanded : reflected;
    } else if (reflected.f < simplex[dim - 1]!.f) {
      simplex[dim] = reflected;
    } else {
      const contracted = reflected.f < worst.f ? point(-0.5) : point(0.5);
      if (contracted.f < Math.min(worst.f, reflected.f)) simplex[dim] = contracted;
      else
        simplex = simplex.map((s, i) => {
          if (i === 0) return s;
          const x = combine(best.x, s.x, 0.5);
          return { x, f: f(x) };
        });
    }
  }
  simplex.sort((a, b) => a.f - b.f);
  return simplex[0]!;
}

const linspace = (a: number, b: number, count: number) =>
  Array.from({ length: count }, (_, i) => (count === 1 ? a : a + ((b - a) * i) / (count - 1)));
const logspace = (a: number, b: number, count: number) => linspace(Math.log(a), Math.log(b), count).map(Math.exp);
const sigmoid = (u: number) => 1 / (1 + Math.exp(-u));
const logit = (p: number) => Math.log(p / (1 - p));

/**
 * The maximum-likelihood parameters within the lapse bounds: a grid over (α, β, λ), then
 * Nelder–Mead from the best grid points and from the simulated observer's true parameters
 * (when given), in coordinates where every bound is built in (log β, log α for a Weibull, λ
 * through a logistic squash into its bounds).
 */
export function fitPsychometric(
  config: Pick<PsychometricConfig, "form" | "guess" | "lapse">,
  data: PsychometricData,
  extraStarts: PsychometricParams[] = [],
): PsychometricParams & { logLikelihood: number } {
  const { form, guess, lapse } = config;
  const ll = (p: PsychometricParams) => logLikelihood(form, guess, p, data);
  const lo = Math.min(...data.x);
  const hi = Math.max(...data.x);
  const span = hi - lo || Math.abs(hi) || 1;
  const fixedLapse = lapse.max - lapse.min < 1e-12;
  const squash = (u: number) => (fixedLapse ? lapse.min : lapse.min + (lapse.max - lapse.min) * sigmoid(u));
  const unsquash = (lambda: number) => {
    const t = Math.min(1 - 1e-6, Math.max(1e-6, (lambda - lapse.min) / (lapse.max - lapse.min)));
    return logit(t);
  };
  const decode = (v: number[]): PsychometricParams => ({
    alpha: form === "weibull" ? Math.exp(v[0]!) : v[0]!,
    beta: Math.exp(v[1]!),
    lambda: squash(v[2] ?? 0),
  });
  const encode = (p: PsychometricParams): number[] => [
    form === "weibull" ? Math.log(p.alpha) : p.alpha,
    Math.log(p.beta),
    ...(fixedLapse ? [] : [unsquash(p.lambda)]),
  ];

  const alphas = form === "weibull" ? logspace(lo / 2, hi * 2, 31) : linspace(lo - span / 4, hi + span / 4, 31);
  const betas = form === "weibull" ? logspace(0.3, 30, 31) : logspace(0.2 / span, 200 / span, 31);
  const lambdas = fixedLapse ? [lapse.min] : linspace(lapse.min, lapse.max, 6);
  const grid: { p: PsychometricParams; ll: number }[] = [];
  for (const alpha of alphas)
    for (const beta of betas)
      for (const lambda of lambdas) {
        const p = { alpha, beta, lambda };
        grid.push({ p, ll: ll(p) });
      }
  grid.sort((a, b) => b.ll - a.ll);

  const starts = [...grid.slice(0, 3).map((g) => g.p), ...extraStarts.filter((p) => p.beta > 0 && (form === "logistic" || p.alpha > 0))];
  const steps = [form === "weibull" ? 0.2 : span / 10, 0.5, ...(fixedLapse ? [] : [1])];
  let best = { p: grid[0]!.p, ll: grid[0]!.ll };
  for (const start of starts) {
    // NaN (an overflow at an extreme of the search) counts as the worst possible fit.
    const result = nelderMead(
      (v) => {
        const value = ll(decode(v));
        return Number.isNaN(value) ? Infinity : -value;
      },
      encode(start),
      steps,
    );
    if (-result.f > best.ll) best = { p: decode(result.x), ll: -result.f };
  }
  return { ...best.p, logLikelihood: best.ll };
}

export const psychometricGrader: Grader<PsychometricConfig, PsychometricAnswer> = {
  type: "psychometric",
  version: "1.0.0",
  configSchema: psychometricConfigSchema,
  answerSchema: psychometricAnswerSchema,

  /** x, n, k as vectors, and `data`, the same as a 3 × levels matrix (rows x, n, k) for a table in the statement. */
  params(config, seed): Params {
    const { x, n, k } = simulate(config, seed);
    return { x, n, k, data: [x, n, k] };
  },

  answerFormat(config, seed) {
    return {
      kind: "psychometric",
      form: config.form,
      guess: config.guess,
      lapse: { min: config.lapse.min, max: config.lapse.max },
      fields: ["alpha", "beta", "lambda"],
      params: psychometricGrader.params!(config, seed),
    };
  },

  grade(input) {
    const prepared = prepare(psychometricGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config, answer } = prepared;
    const { points } = input;

    if (answer.beta <= 0) return rejected(points, `beta (the slope) must be positive; you gave ${answer.beta}.`);
    if (config.form === "weibull" && answer.alpha <= 0) {
      return rejected(points, `alpha (the Weibull threshold) must be positive; you gave ${answer.alpha}.`);
    }
    if (answer.lambda < config.lapse.min || answer.lambda > config.lapse.max) {
      return rejected(
        points,
        `lambda (the lapse rate) must lie between ${config.lapse.min} and ${config.lapse.max} for this problem; you gave ${answer.lambda}.`,
      );
    }

    const { truth, ...data } = simulate(config, input.seed);
    const yours = logLikelihood(config.form, config.guess, answer, data);
    const best = fitPsychometric(config, data, [truth]);
    const delta = Math.max(0, best.logLikelihood - yours);
    const { fullWithin, zeroAt } = config;
    const fraction = delta <= fullWithin ? 1 : delta >= zeroAt ? 0 : (zeroAt - delta) / (zeroAt - fullWithin);
    const score = fraction * points;

    // The message gives the log-likelihoods, never the best-fitting parameters.
    const verdict =
      fraction === 1 ? "full marks" : fraction === 0 ? "no marks" : `${Math.round(fraction * 100)} % of the marks (linear between the two)`;
    const message =
      `Log-likelihood of your parameters on your data: ${fixed(yours, 2)} nats. ` +
      `The maximum-likelihood fit is ${fixed(delta, 2)} nats higher (ΔLL = ${fixed(delta, 2)}; ` +
      `full marks for ΔLL ≤ ${fullWithin}, none for ΔLL ≥ ${zeroAt}): ${verdict}.`;
    return graded(points, score, message, [test("Log-likelihood of your fit", score, points, message)]);
  },
};
