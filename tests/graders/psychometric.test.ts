import { describe, expect, it } from "vitest";
import {
  fitPsychometric,
  logLikelihood,
  nelderMead,
  psychometric,
  psychometricConfigSchema,
  psychometricGrader,
  simulate,
  stimulusLevels,
  type PsychometricParams,
} from "../../graders/psychometric.ts";
import { configErrors, grade } from "./helpers.ts";

const logistic = {
  form: "logistic",
  guess: 0.5,
  levels: { min: 1, max: 10, count: 10 },
  trials: 40,
  observer: { alpha: { min: 3.5, max: 7.5 }, beta: { min: 0.6, max: 1.5 }, lambda: { min: 0, max: 0.05 } },
  lapse: { min: 0, max: 0.1 },
  fullWithin: 0.5,
  zeroAt: 5,
};
const weibull = {
  form: "weibull",
  levels: { min: 0.5, max: 16, count: 6, scale: "log" },
  trials: 50,
  observer: { alpha: { min: 2, max: 6 }, beta: { min: 1.5, max: 4 }, lambda: { min: 0, max: 0.04 } },
};
const parsed = psychometricConfigSchema.parse(logistic);

/** The grader's own maximum-likelihood fit for this student, as a student's answer. */
function bestFit(rawConfig: unknown, seed: string): PsychometricParams & { logLikelihood: number } {
  const config = psychometricConfigSchema.parse(rawConfig);
  const { truth, ...data } = simulate(config, seed);
  return fitPsychometric(config, data, [truth]);
}
const answerOf = ({ alpha, beta, lambda }: PsychometricParams) => ({ alpha, beta, lambda });

/** The numbers a test's message reports: [your LL, ΔLL]. */
function reported(message: string): [number, number] {
  const m = /on your data: (-?[\d.]+) nats\. .*ΔLL = ([\d.]+)/.exec(message);
  expect(m, message).not.toBeNull();
  return [Number(m![1]), Number(m![2])];
}

describe("psychometric config", () => {
  it("fills in defaults", () => {
    const c = psychometricConfigSchema.parse({ ...weibull });
    expect(c).toMatchObject({ guess: 0.5, lapse: { min: 0, max: 0.1 }, fullWithin: 0.5, zeroAt: 5 });
  });

  it("rejects impossible setups with the field at fault", () => {
    expect(configErrors(psychometricGrader, { ...logistic, lapse: { min: 0, max: 0.5 } })).toEqual([
      expect.stringMatching(/^lapse\.max: must be below 1 − guess/),
    ]);
    expect(configErrors(psychometricGrader, { ...logistic, lapse: { min: 0, max: 0.02 } })).toEqual([
      expect.stringMatching(/^observer\.lambda: must lie within the lapse bounds/),
    ]);
    expect(configErrors(psychometricGrader, { ...logistic, fullWithin: 5 })).toEqual([expect.stringMatching(/^zeroAt: must be greater/)]);
    expect(configErrors(psychometricGrader, { ...weibull, levels: [0, 1, 2] }).join("\n")).toMatch(
      /^levels: a Weibull function needs positive/,
    );
    expect(configErrors(psychometricGrader, { ...logistic, observer: { ...logistic.observer, beta: { min: 0, max: 1 } } })).toEqual([
      "observer.beta.min: the slope must be positive",
    ]);
    expect(configErrors(psychometricGrader, { ...logistic, form: "gumbel" }).join("\n")).toMatch(/^form:/);
  });

  it("spaces levels evenly, on a linear or a log scale, to 4 significant digits", () => {
    expect(stimulusLevels({ min: 1, max: 10, count: 10, scale: "linear" })).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(stimulusLevels({ min: 0.5, max: 16, count: 6, scale: "log" })).toEqual([0.5, 1, 2, 4, 8, 16]);
    expect(stimulusLevels({ min: 0, max: 1, count: 4, scale: "linear" })).toEqual([0, 0.3333, 0.6667, 1]);
    expect(stimulusLevels([3, 1, 2])).toEqual([3, 1, 2]);
  });
});

describe("psychometric model", () => {
  it("runs from the guess rate to 1 − lapse, and is halfway at the threshold (logistic)", () => {
    const p = { alpha: 4, beta: 2, lambda: 0.04 };
    expect(psychometric("logistic", 0.5, p, -100)).toBeCloseTo(0.5, 10);
    expect(psychometric("logistic", 0.5, p, 100)).toBeCloseTo(0.96, 10);
    expect(psychometric("logistic", 0.5, p, 4)).toBeCloseTo(0.73, 10);
    // Weibull: F(alpha) = 1 − 1/e, and nothing above chance at x ≤ 0.
    expect(psychometric("weibull", 0.5, p, 4)).toBeCloseTo(0.5 + 0.46 * (1 - Math.exp(-1)), 10);
    expect(psychometric("weibull", 0.5, p, 0)).toBe(0.5);
  });

  it("scores data by the Bernoulli log-likelihood, finite even for confident misses", () => {
    const data = { x: [1, 2], n: [10, 10], k: [5, 10] };
    const p = { alpha: 1.5, beta: 1, lambda: 0 };
    const psi = data.x.map((x) => psychometric("logistic", 0.5, p, x));
    expect(logLikelihood("logistic", 0.5, p, data)).toBeCloseTo(
      5 * Math.log(psi[0]!) + 5 * Math.log(1 - psi[0]!) + 10 * Math.log(psi[1]!),
      10,
    );
    const steep = logLikelihood("logistic", 0.5, { alpha: 1.5, beta: 1e6, lambda: 0 }, { x: [2], n: [10], k: [9] });
    expect(Number.isFinite(steep)).toBe(true);
    expect(steep).toBeLessThan(-20);
  });

  it("minimises with Nelder–Mead", () => {
    const r = nelderMead(([a, b]) => (a! - 1) ** 2 + 10 * (b! + 2) ** 2, [5, 5], [1, 1]);
    expect(r.x[0]).toBeCloseTo(1, 5);
    expect(r.x[1]).toBeCloseTo(-2, 5);
  });

  it("fits at least as well as the true observer and as a dense grid, within the lapse bounds", () => {
    for (const seed of ["s1", "s2", "s3"]) {
      const { truth, ...data } = simulate(parsed, seed);
      const fit = fitPsychometric(parsed, data);
      expect(fit.logLikelihood).toBeGreaterThanOrEqual(logLikelihood("logistic", 0.5, truth, data) - 1e-9);
      let grid = -Infinity;
      for (let alpha = 0; alpha <= 11; alpha += 0.1)
        for (let lb = -3; lb <= 3; lb += 0.05)
          for (const lambda of [0, 0.02, 0.04, 0.06, 0.08, 0.1])
            grid = Math.max(grid, logLikelihood("logistic", 0.5, { alpha, beta: Math.exp(lb), lambda }, data));
      expect(fit.logLikelihood).toBeGreaterThanOrEqual(grid - 1e-9);
      expect(fit.lambda).toBeGreaterThanOrEqual(0);
      expect(fit.lambda).toBeLessThanOrEqual(0.1);
      expect(fit.beta).toBeGreaterThan(0);
    }
  });
});

describe("psychometric params", () => {
  it("are the same for a seed every time and differ across seeds", () => {
    expect(psychometricGrader.params!(parsed, "alice")).toEqual(psychometricGrader.params!(parsed, "alice"));
    const seeds = ["alice", "bob", "carol", "dave", "erin"];
    const ks = new Set(seeds.map((s) => JSON.stringify(psychometricGrader.params!(parsed, s).k)));
    expect(ks.size).toBe(seeds.length);
  });

  it("give levels, trials and counts (0 ≤ k ≤ n) as vectors and as a 3-row table", () => {
    const p = psychometricGrader.params!(parsed, "alice");
    expect(p.x).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(p.n).toEqual(Array(10).fill(40));
    const k = p.k as number[];
    expect(k).toHaveLength(10);
    for (const v of k) expect(Number.isInteger(v) && v >= 0 && v <= 40).toBe(true);
    expect(p.data).toEqual([p.x, p.n, p.k]);
    // A 2AFC observer: near chance at the lowest level, near 1 − λ at the highest.
    expect(k[0]! / 40).toBeLessThan(0.8);
    expect(k[9]! / 40).toBeGreaterThan(0.75);
  });

  it("show nothing of the simulated observer in the answer format", () => {
    const format = psychometricGrader.answerFormat(parsed, "alice");
    expect(format).toEqual({
      kind: "psychometric",
      form: "logistic",
      guess: 0.5,
      lapse: { min: 0, max: 0.1 },
      fields: ["alpha", "beta", "lambda"],
      params: psychometricGrader.params!(parsed, "alice"),
    });
  });
});

describe("psychometric grader", () => {
  it("gives full marks to the maximum-likelihood fit and reports LL and ΔLL, not the best parameters", async () => {
    const best = bestFit(logistic, "alice");
    const r = await grade(psychometricGrader, logistic, answerOf(best), { seed: "alice" });
    expect(r).toMatchObject({ status: "graded", score: 10 });
    const [ll, delta] = reported(r.feedback.tests[0]!.message);
    expect(ll).toBeCloseTo(best.logLikelihood, 2);
    expect(delta).toBe(0);
    expect(r.feedback.tests[0]).toMatchObject({ name: "Log-likelihood of your fit", status: "passed" });
    expect(r.feedback.summary).not.toContain(best.alpha.toFixed(2));
    expect(r.feedback.summary).not.toContain(best.beta.toFixed(2));
  });

  it("gives full marks to any fit within fullWithin nats, rounded parameters included", async () => {
    const best = bestFit(logistic, "bob");
    const rounded = { alpha: Number(best.alpha.toFixed(1)), beta: Number(best.beta.toFixed(1)), lambda: Number(best.lambda.toFixed(2)) };
    const r = await grade(psychometricGrader, logistic, rounded, { seed: "bob" });
    expect(r.score).toBe(10);
    expect(reported(r.feedback.summary)[1]).toBeLessThanOrEqual(0.5);
  });

  it("gives nothing to a bad fit", async () => {
    const r = await grade(psychometricGrader, logistic, { alpha: 14, beta: 0.3, lambda: 0.1 }, { seed: "alice" });
    expect(r).toMatchObject({ status: "graded", score: 0 });
    expect(r.feedback.tests[0]).toMatchObject({ status: "failed", score: 0, maxScore: 10 });
    expect(reported(r.feedback.summary)[1]).toBeGreaterThanOrEqual(5);
  });

  it("is linear in ΔLL between fullWithin and zeroAt", async () => {
    const best = bestFit(logistic, "carol");
    const { x, n, k } = simulate(parsed, "carol");
    const data = { x, n, k };
    // Move the threshold until the fit is about 2.75 nats worse: halfway between 0.5 and 5.
    const deltaAt = (shift: number) => best.logLikelihood - logLikelihood("logistic", 0.5, { ...best, alpha: best.alpha + shift }, data);
    let [lo, hi] = [0, 5];
    for (let i = 0; i < 60; i++) {
      const mid = (lo + hi) / 2;
      if (deltaAt(mid) < 2.75) lo = mid;
      else hi = mid;
    }
    const answer = { ...answerOf(best), alpha: best.alpha + lo };
    const r = await grade(psychometricGrader, logistic, answer, { seed: "carol" });
    const [, delta] = reported(r.feedback.summary);
    expect(delta).toBeCloseTo(2.75, 2);
    expect(r.score).toBeCloseTo(5, 3);
    expect(r.feedback.tests[0]).toMatchObject({ status: "partial" });
    // And the ends of the ramp, with other bounds.
    const strict = { ...logistic, fullWithin: 0, zeroAt: 2.75 };
    expect((await grade(psychometricGrader, strict, answer, { seed: "carol" })).score).toBeLessThan(0.01);
  });

  it("grades the same answer the same way every time, and the same fit differently for another student", async () => {
    const best = answerOf(bestFit(logistic, "dave"));
    const a = await grade(psychometricGrader, logistic, best, { seed: "dave" });
    const b = await grade(psychometricGrader, logistic, best, { seed: "dave" });
    expect(b).toEqual(a);
    const other = await grade(psychometricGrader, logistic, best, { seed: "erin" });
    expect(other.feedback.summary).not.toBe(a.feedback.summary);
  });

  it("rejects impossible parameters with a clear message", async () => {
    const best = answerOf(bestFit(logistic, "alice"));
    const cases: [object, RegExp][] = [
      [{ ...best, beta: 0 }, /beta \(the slope\) must be positive; you gave 0\./],
      [{ ...best, beta: -1 }, /beta \(the slope\) must be positive/],
      [{ ...best, lambda: 0.2 }, /lambda \(the lapse rate\) must lie between 0 and 0\.1 for this problem; you gave 0\.2\./],
      [{ ...best, lambda: -0.01 }, /lambda \(the lapse rate\) must lie between 0 and 0\.1/],
      [{ alpha: 1, beta: 1 }, /^Invalid answer: lambda:/],
      [{ ...best, gamma: 0.5 }, /^Invalid answer:/],
    ];
    for (const [answer, message] of cases) {
      const r = await grade(psychometricGrader, logistic, answer, { seed: "alice" });
      expect(r).toMatchObject({ status: "rejected", score: 0 });
      expect(r.feedback.summary).toMatch(message);
    }
    const weibullBest = answerOf(bestFit(weibull, "alice"));
    const r = await grade(psychometricGrader, weibull, { ...weibullBest, alpha: -2 }, { seed: "alice" });
    expect(r).toMatchObject({ status: "rejected" });
    expect(r.feedback.summary).toMatch(/alpha \(the Weibull threshold\) must be positive/);
  });

  it("fits Weibull observers too", async () => {
    const best = bestFit(weibull, "frank");
    expect((await grade(psychometricGrader, weibull, answerOf(best), { seed: "frank" })).score).toBe(10);
    const far = { alpha: best.alpha * 4, beta: best.beta, lambda: best.lambda };
    expect((await grade(psychometricGrader, weibull, far, { seed: "frank" })).score).toBe(0);
  });

  it("reports a broken config as a problem error, not the student's fault", async () => {
    const r = await psychometricGrader.grade({
      config: { ...logistic, trials: 0 } as never,
      privateData: new Map(),
      answer: { alpha: 1, beta: 1, lambda: 0 },
      seed: "s",
      points: 5,
    });
    expect(r).toMatchObject({ status: "error", score: 0 });
  });
});
