import { describe, expect, it } from "vitest";
import { numericGrader } from "../../graders/numeric.ts";
import { sampleParams } from "../../graders/params.ts";
import { configErrors, grade } from "./helpers.ts";

describe("numeric grader: fixed answer", () => {
  const config = { answer: 2.5 };

  it("passes within the default 1% relative tolerance", async () => {
    expect(await grade(numericGrader, config, { value: 2.5 })).toMatchObject({ status: "graded", score: 10 });
    expect((await grade(numericGrader, config, { value: 2.52 })).score).toBe(10);
    expect((await grade(numericGrader, config, { value: 2.53 })).score).toBe(0);
  });

  it("uses atol near zero", async () => {
    const zero = { answer: 0, atol: 0.001 };
    expect((await grade(numericGrader, zero, { value: 0.0009 })).score).toBe(10);
    expect((await grade(numericGrader, zero, { value: 0.0011 })).score).toBe(0);
  });

  it("never states the expected value in feedback", async () => {
    const r = await grade(numericGrader, { answer: 123.456 }, { value: 1 });
    expect(r.score).toBe(0);
    expect(JSON.stringify(r.feedback)).not.toMatch(/123/);
  });

  it("rejects answers that are not finite numbers", async () => {
    for (const answer of [{ value: "2.5" }, { value: Infinity }, { value: Number.NaN }, {}]) {
      const r = await grade(numericGrader, config, answer);
      expect(r.status).toBe("rejected");
    }
  });
});

describe("numeric grader: randomised", () => {
  const config = {
    answer: "m * v^2 / 2",
    params: { m: { min: 1, max: 10, step: 1 }, v: { choices: [2, 3, 4] } },
    unit: "J",
  };

  it("grades each student on their own parameters", async () => {
    for (const seed of ["alice", "bob", "carol"]) {
      const p = sampleParams(numericGrader.configSchema.parse(config).params, seed) as { m: number; v: number };
      const right = (p.m * p.v ** 2) / 2;
      expect((await grade(numericGrader, config, { value: right }, { seed })).score).toBe(10);
      expect((await grade(numericGrader, config, { value: right * 1.05 }, { seed })).score).toBe(0);
    }
  });

  it("shows the student's params and unit, not the answer", () => {
    const parsed = numericGrader.configSchema.parse(config);
    const format = numericGrader.answerFormat(parsed, "alice");
    expect(format).toEqual({ kind: "number", unit: "J", params: sampleParams(parsed.params, "alice") });
    expect(numericGrader.params!(parsed, "alice")).toEqual(format.params);
    expect(JSON.stringify(format)).not.toMatch(/\*/);
  });

  it("reports problem bugs as status error, not as the student's fault", async () => {
    // k = 2 makes the reference infinite. (The config check's own sample draws k = 3, so the config loads.)
    const config = { answer: "1 / (k - 2)", params: { k: { choices: [3, 2] } } };
    const seeds = Array.from({ length: 20 }, (_, i) => `seed-${i}`);
    const results = await Promise.all(seeds.map((seed) => grade(numericGrader, config, { value: 1 }, { seed })));
    const broken = results.filter((r) => r.status === "error");
    expect(broken.length).toBeGreaterThan(0);
    expect(broken[0]!.feedback.summary).toMatch(/not finite/);
    expect(results.some((r) => r.status === "graded" && r.score === 10)).toBe(true);
  });
});

describe("numeric grader: config", () => {
  it("reports mistakes in problem.yaml", () => {
    expect(configErrors(numericGrader, { answer: 1, rtl: 0.1 }).join()).toMatch(/rtl/);
    expect(configErrors(numericGrader, { answer: 1, rtol: -1 }).join()).toMatch(/rtol/);
    expect(configErrors(numericGrader, { answer: "a * q", params: { a: { min: 0, max: 1 } } }).join()).toMatch(
      /answer: Unknown symbol "q"/,
    );
    expect(configErrors(numericGrader, { answer: "a *", params: { a: { min: 0, max: 1 } } }).join()).toMatch(/answer: Could not parse/);
    expect(configErrors(numericGrader, { answer: "X", params: { X: { shape: [2], min: 0, max: 1 } } }).join()).toMatch(/single number/);
  });

  it("re-validates a raw config inside grade() (defaults filled in)", async () => {
    const r = await numericGrader.grade({
      config: { answer: 1 } as never,
      privateData: new Map(),
      answer: { value: 1.005 },
      seed: "s",
      points: 3,
    });
    expect(r).toMatchObject({ status: "graded", score: 3 });
  });
});
