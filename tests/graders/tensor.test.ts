import { describe, expect, it } from "vitest";
import { tensorGrader } from "../../graders/tensor.ts";
import { configErrors, grade } from "./helpers.ts";

const fixed = {
  answer: [
    [1, 2, 3],
    [4, 5, 6],
  ],
};

describe("tensor grader: fixed answer", () => {
  it("gives full points for the right values within tolerance", async () => {
    const r = await grade(tensorGrader, fixed, {
      value: [
        [1, 2, 3.0001],
        [4, 5, 6],
      ],
    });
    expect(r).toMatchObject({ status: "graded", score: 10 });
    expect(r.feedback.tests).toEqual([
      expect.objectContaining({ name: "Values", status: "passed", message: "All 6 entries are within tolerance." }),
    ]);
  });

  it("is all-or-nothing by default and names the wrong entries", async () => {
    const r = await grade(tensorGrader, fixed, {
      value: [
        [1, 2, 3],
        [4, 0, 7],
      ],
    });
    expect(r).toMatchObject({ status: "graded", score: 0 });
    expect(r.feedback.summary).toBe("4 of 6 entries are within tolerance; not within it: value[1][1], value[1][2].");
  });

  it("gives the fraction of right entries with scoring: fraction", async () => {
    const r = await grade(
      tensorGrader,
      { ...fixed, scoring: "fraction" },
      {
        value: [
          [1, 2, 3],
          [4, 0, 7],
        ],
      },
    );
    expect(r.score).toBe(6.666667);
    expect(r.feedback.tests[0]).toMatchObject({ status: "partial", score: 6.666667, maxScore: 10 });
  });

  it("checks the shape first and says both shapes", async () => {
    const r = await grade(tensorGrader, fixed, {
      value: [
        [1, 2],
        [4, 5],
        [7, 8],
      ],
    });
    expect(r).toMatchObject({ status: "graded", score: 0 });
    expect(r.feedback.summary).toBe("Expected shape [2,3], got [3,2].");
    expect(r.feedback.tests[0]).toMatchObject({ name: "Shape", status: "failed" });
    expect((await grade(tensorGrader, fixed, { value: [1, 2, 3, 4, 5, 6] })).feedback.summary).toBe("Expected shape [2,3], got [6].");
    expect((await grade(tensorGrader, fixed, { value: 7 })).feedback.summary).toBe("Expected shape [2,3], got [].");
  });

  it("rejects ragged arrays, saying where", async () => {
    const r = await grade(tensorGrader, fixed, {
      value: [
        [1, 2, 3],
        [4, 5],
      ],
    });
    expect(r.status).toBe("rejected");
    expect(r.feedback.summary).toMatch(/ragged: value\[1\]/);
    expect((await grade(tensorGrader, fixed, { value: [[1, 2, 3], 4] })).status).toBe("rejected");
  });

  it("rejects values that are not numbers", async () => {
    for (const value of [
      [
        ["1", 2, 3],
        [4, 5, 6],
      ],
      [
        [1, null, 3],
        [4, 5, 6],
      ],
      "1,2,3",
      { a: 1 },
    ]) {
      const r = await grade(tensorGrader, fixed, { value });
      expect(r.status).toBe("rejected");
      expect(r.feedback.summary).toMatch(/Invalid answer: value/);
    }
    // Deep nesting is refused without recursing into it.
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect((await grade(tensorGrader, fixed, { value: deep })).status).toBe("rejected");
  });
});

describe("tensor grader: randomised", () => {
  const config = { answer: "X * transpose(X)", params: { X: { shape: [3, 2], min: -3, max: 3, step: 1 } } };

  it("grades against the student's own matrix", async () => {
    const parsed = tensorGrader.configSchema.parse(config);
    for (const seed of ["alice", "bob"]) {
      const X = tensorGrader.params!(parsed, seed).X as number[][];
      const gram = X.map((a) => X.map((b) => a[0]! * b[0]! + a[1]! * b[1]!));
      expect((await grade(tensorGrader, config, { value: gram }, { seed })).score).toBe(10);
      const off = gram.map((row) => row.map((v) => v + 1));
      expect((await grade(tensorGrader, config, { value: off }, { seed })).score).toBe(0);
    }
    expect(tensorGrader.params!(parsed, "alice")).not.toEqual(tensorGrader.params!(parsed, "bob"));
  });

  it("answerFormat gives the shape and params, never values of the answer", () => {
    const parsed = tensorGrader.configSchema.parse(config);
    const format = tensorGrader.answerFormat(parsed, "alice");
    expect(format).toEqual({ kind: "tensor", shape: [3, 3], params: tensorGrader.params!(parsed, "alice") });
    expect(tensorGrader.answerFormat(tensorGrader.configSchema.parse(fixed), "s")).toEqual({ kind: "tensor", shape: [2, 3], params: {} });
  });
});

describe("tensor grader: config", () => {
  it("reports mistakes in problem.yaml", () => {
    expect(configErrors(tensorGrader, { answer: [[1, 2], [3]] }).join()).toMatch(/answer: is ragged/);
    expect(configErrors(tensorGrader, { answer: "Y * 2", params: { X: { min: 0, max: 1 } } }).join()).toMatch(/Unknown symbol "Y"/);
    expect(configErrors(tensorGrader, { answer: [[1]], scoring: "partial" }).join()).toMatch(/scoring/);
    expect(configErrors(tensorGrader, { answer: [[1]], tol: 1 }).join()).toMatch(/tol/);
  });
});
