import { describe, expect, it } from "vitest";
import { psychometricCurveConfigSchema, psychometricCurveGrader } from "../../graders/psychometric-curve.ts";
import { psychometric } from "../../graders/psychometric.ts";
import { configErrors, grade } from "./helpers.ts";

const logistic = {
  form: "logistic",
  guess: 0.5,
  levels: { min: 0, max: 10, count: 21 },
  observer: {
    alpha: { min: 3.5, max: 6.5, step: 0.5 },
    beta: { min: 1.5, max: 3, step: 0.25 },
    lambda: { min: 0.03, max: 0.08, step: 0.01 },
  },
};
const parsed = psychometricCurveConfigSchema.parse(logistic);
const seed = "student-3";
const p = psychometricCurveGrader.params!(parsed, seed) as { alpha: number; beta: number; lambda: number; guess: number; x: number[] };
/** ψ of this student's function with some parameters changed: the wrong curves below. */
const curve = (change: Partial<typeof p> = {}) => {
  const q = { ...p, ...change };
  return q.x.map((x) => psychometric("logistic", q.guess, q, x));
};
const statuses = (r: Awaited<ReturnType<typeof grade>>) => Object.fromEntries(r.feedback.tests.map((t) => [t.name, t.status]));
const allPassed = { Monotone: "passed", "Lower asymptote": "passed", "Upper asymptote": "passed", Threshold: "passed", Slope: "passed" };

describe("psychometric-curve: config and parameters", () => {
  it("fills in defaults and gives each student their own function at the problem's levels", () => {
    expect(parsed).toMatchObject({ tolerance: 0.02, slopeFactor: 1.5 });
    expect(p.x).toEqual(Array.from({ length: 21 }, (_, i) => i / 2));
    expect(p.guess).toBe(0.5);
    expect(psychometricCurveGrader.params!(parsed, seed)).toEqual(p);
    expect(psychometricCurveGrader.params!(parsed, "student-4")).not.toEqual(p);
    expect(psychometricCurveGrader.answerFormat(parsed, seed)).toMatchObject({
      kind: "psychometric-curve",
      fields: ["psi"],
      levels: p.x,
      params: p,
    });
  });

  it("refuses levels that do not reach the asymptotes for every student, and other impossible setups", () => {
    const narrow = { ...logistic, levels: { min: 2, max: 8, count: 13 } };
    expect(configErrors(psychometricCurveGrader, narrow).join()).toMatch(/levels: do not reach the asymptotes for α = 3.5, β = 1.5/);
    const outside = { ...logistic, observer: { ...logistic.observer, alpha: { min: 3, max: 12 } } };
    expect(configErrors(psychometricCurveGrader, outside).join()).toMatch(/observer\.alpha: must lie within the levels/);
    const lapse = { ...logistic, observer: { ...logistic.observer, lambda: { min: 0, max: 0.6 } } };
    expect(configErrors(psychometricCurveGrader, lapse).join()).toMatch(/observer\.lambda/);
    expect(configErrors(psychometricCurveGrader, { ...logistic, slope: 2 }).join()).toMatch(/slope/);
  });
});

describe("psychometric-curve: grading the shape", () => {
  it("gives full marks to the function itself and to a careful drawing of it", async () => {
    const exact = await grade(psychometricCurveGrader, logistic, { psi: curve() }, { seed, points: 5 });
    expect(exact).toMatchObject({ status: "graded", score: 5 });
    expect(statuses(exact)).toEqual(allPassed);
    // Read off a drawing: every value off by up to 0.01, kept non-decreasing.
    const drawn = curve().map((v, i) => Math.round((v + (i % 2 ? 0.004 : -0.004)) * 100) / 100);
    for (let i = 1; i < drawn.length; i++) drawn[i] = Math.max(drawn[i]!, drawn[i - 1]!);
    expect((await grade(psychometricCurveGrader, logistic, { psi: drawn }, { seed, points: 5 })).score).toBe(5);
  });

  it("fails exactly the property a mistake breaks, and says why", async () => {
    const cases: [string, number[], string, RegExp][] = [
      ["no guess rate (a yes/no curve from 0)", curve({ guess: 0 }), "Lower asymptote", /guesses right with probability γ = 0.5/],
      ["no lapses (up to 1)", curve({ lambda: 0 }), "Upper asymptote", /1 − λ/],
      ["threshold moved", curve({ alpha: p.alpha + 1.5 }), "Threshold", /threshold α/],
      ["far too shallow", curve({ beta: p.beta / 3 }), "Slope", /too shallow/],
    ];
    for (const [label, psi, broken, message] of cases) {
      const r = await grade(psychometricCurveGrader, logistic, { psi }, { seed, points: 5 });
      const failed = r.feedback.tests.filter((t) => t.status !== "passed");
      expect(
        failed.map((t) => t.name),
        label,
      ).toContain(broken);
      expect(failed.find((t) => t.name === broken)!.message, label).toMatch(message);
      expect(r.score, label).toBe(5 - failed.length);
      expect(r.feedback.summary, label).toMatch(new RegExp(`to fix: .*${broken.toLowerCase()}`));
    }
  });

  it("flags a curve that falls, or one that stays flat", async () => {
    const falling = curve();
    [falling[12], falling[13]] = [falling[13]!, falling[12]! - 0.05];
    const r = await grade(psychometricCurveGrader, logistic, { psi: falling }, { seed, points: 5 });
    expect(statuses(r).Monotone).toBe("failed");
    expect(r.feedback.tests[0]!.message).toMatch(/falls between x = 6 and x = 6.5/);
    const flat = await grade(psychometricCurveGrader, logistic, { psi: p.x.map(() => 0.75) }, { seed, points: 5 });
    expect(flat.feedback.tests[0]!.message).toMatch(/rises only 0/);
    expect(flat.score).toBeLessThan(2);
  });

  it("rejects a curve with the wrong number of values or values that are not probabilities", async () => {
    const short = await grade(psychometricCurveGrader, logistic, { psi: curve().slice(1) }, { seed });
    expect(short).toMatchObject({ status: "rejected" });
    expect(short.feedback.summary).toMatch(/each of the 21 stimulus levels/);
    const big = await grade(psychometricCurveGrader, logistic, { psi: curve().map((v) => v * 2) }, { seed });
    expect(big.feedback.summary).toMatch(/ψ is a probability/);
    expect((await grade(psychometricCurveGrader, logistic, { value: curve() }, { seed })).status).toBe("rejected");
  });

  it("grades a Weibull function by the same properties", async () => {
    const weibull = {
      ...logistic,
      form: "weibull",
      levels: { min: 0.5, max: 20, count: 40 },
      observer: { ...logistic.observer, alpha: { min: 4, max: 6 }, beta: { min: 3, max: 4 } },
    };
    const w = psychometricCurveGrader.params!(psychometricCurveConfigSchema.parse(weibull), seed) as typeof p;
    const psi = w.x.map((x) => psychometric("weibull", 0.5, w, x));
    expect((await grade(psychometricCurveGrader, weibull, { psi }, { seed })).score).toBe(10);
    const asLogistic = w.x.map((x) => psychometric("logistic", 0.5, w, x));
    expect((await grade(psychometricCurveGrader, weibull, { psi: asLogistic }, { seed })).score).toBeLessThan(10);
  });
});
