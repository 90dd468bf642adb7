import { describe, expect, it } from "vitest";
import {
  comparisons,
  drawRdms,
  midranks,
  rdmComparisonConfigSchema,
  rdmComparisonGrader,
  spearman,
  upperTriangle,
} from "../../graders/rdm-comparison.ts";
import { configErrors, grade } from "./helpers.ts";

const config = { stimuli: 5 };
const parsed = rdmComparisonConfigSchema.parse(config);

describe("rdm-comparison: statistics", () => {
  it("ranks ties by their mean rank and correlates ranks as scipy.stats does", () => {
    // Values from scipy 1.10: rankdata, spearmanr.
    expect(midranks([10, 20, 20, 30])).toEqual([1, 2.5, 2.5, 4]);
    expect(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])).toBeCloseTo(0.8207826816681233, 12);
    expect(spearman([0.3, 0.1, 0.9, 0.5, 0.7, 0.2], [0.2, 0.4, 0.8, 0.1, 0.9, 0.3])).toBeCloseTo(0.3714285714285715, 12);
    expect(
      upperTriangle([
        [0, 1, 2],
        [1, 0, 3],
        [2, 3, 0],
      ]),
    ).toEqual([1, 2, 3]);
  });
});

describe("rdm-comparison: each student's RDMs", () => {
  it("are symmetric with a zero diagonal, no ties within a triangle, the same every time and different per student", () => {
    const { A, B } = drawRdms(parsed, "student-1");
    for (const M of [A, B]) {
      expect(M).toHaveLength(5);
      M.forEach((row, i) => row.forEach((v, j) => expect(v).toBe(M[j]![i])));
      M.forEach((row, i) => expect(row[i]).toBe(0));
      const upper = upperTriangle(M);
      expect(new Set(upper).size).toBe(10);
      for (const v of upper) expect(v > 0 && v < 2).toBe(true);
    }
    expect(rdmComparisonGrader.params!(parsed, "student-1")).toEqual({ A, B });
    expect(drawRdms(parsed, "student-2")).not.toEqual({ A, B });
  });

  it("keep the recognised mistakes apart from the answer, for every one of 300 students", () => {
    for (let i = 0; i < 300; i++) {
      const { A, B } = drawRdms(parsed, `s${i}`);
      const { answer, mistakes } = comparisons(A, B);
      for (const m of mistakes) expect(Math.abs(m.value - answer), `s${i}`).toBeGreaterThan(parsed.separation);
    }
  });

  it("show the matrices in the answer format, never the answer", () => {
    const format = rdmComparisonGrader.answerFormat(parsed, "student-1");
    expect(format).toEqual({ kind: "number", params: drawRdms(parsed, "student-1") });
  });
});

describe("rdm-comparison: grading", () => {
  const seed = "student-7";
  const { A, B } = drawRdms(parsed, seed);
  const { answer, mistakes } = comparisons(A, B);

  it("gives full marks within atol and names the mistake it recognises", async () => {
    expect(await grade(rdmComparisonGrader, config, { value: answer + 0.004 }, { seed })).toMatchObject({ score: 10 });
    const pearson = await grade(rdmComparisonGrader, config, { value: mistakes[0]!.value }, { seed });
    expect(pearson.score).toBe(0);
    expect(pearson.feedback.summary).toMatch(/Pearson correlation of the dissimilarities/);
    const whole = await grade(rdmComparisonGrader, config, { value: mistakes[1]!.value }, { seed });
    expect(whole.feedback.summary).toMatch(/whole matrices/);
    const other = await grade(rdmComparisonGrader, config, { value: answer > 0 ? answer - 0.5 : answer + 0.5 }, { seed });
    expect(other).toMatchObject({ score: 0 });
    expect(other.feedback.summary).toMatch(/Not within 0.005 of the comparison asked for/);
  });

  it("rejects a value that is no correlation, and a malformed answer", async () => {
    expect(await grade(rdmComparisonGrader, config, { value: 1.5 }, { seed })).toMatchObject({ status: "rejected" });
    expect(await grade(rdmComparisonGrader, config, { value: "0.5" }, { seed })).toMatchObject({ status: "rejected" });
  });

  it("reports config mistakes", () => {
    expect(configErrors(rdmComparisonGrader, { stimuli: 3 }).join()).toMatch(/stimuli/);
    expect(configErrors(rdmComparisonGrader, { stimuli: 5, tolerance: 1 }).join()).toMatch(/tolerance/);
  });
});
