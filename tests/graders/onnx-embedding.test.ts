import { describe, expect, it } from "vitest";
import { embeddingGrader } from "../../graders/onnx-embedding.ts";
import { accuracy, fitLogistic, knnPredict, predictLinear, standardize, type Matrix } from "../../graders/onnx/linear-eval.ts";
import { fixtureFile, gradeModel, loadProblem, measured, progressRecorder } from "../helpers/model-grading.ts";

const problem = loadProblem("onnx-advanced", "ssl-linear-eval");
const model = (name: string) => fixtureFile(`advanced/embedding/${name}.onnx`);
const matrix = (rows: number[][]): Matrix => ({ rows: rows.length, cols: rows[0]!.length, data: Float64Array.from(rows.flat()) });

describe("linear evaluation protocol", () => {
  it("standardises with train statistics and zeroes constant features", () => {
    const [train, test] = standardize(
      matrix([
        [1, 5],
        [3, 5],
      ]),
      matrix([[2, 7]]),
    );
    expect([...train!.data]).toEqual([-1, 0, 1, 0]);
    expect([...test!.data]).toEqual([0, 2]);
  });

  it("fits a separable problem from zero, deterministically", () => {
    const x = matrix([
      [-2, 0],
      [-1, 0.5],
      [1, -0.5],
      [2, 0],
      [0, 3],
      [0.5, 2],
    ]);
    const y = Int32Array.from([0, 0, 1, 1, 2, 2]);
    const a = fitLogistic(x, y, 3, { l2: 1e-3, iterations: 100 });
    expect(accuracy(predictLinear(a, x), y)).toBe(1);
    expect(fitLogistic(x, y, 3, { l2: 1e-3, iterations: 100 })).toEqual(a);
  });

  it("k-NN votes by cosine similarity, ties to the larger summed similarity", () => {
    const train = matrix([
      [1, 0],
      [0.9, 0.1],
      [0, 1],
      [-1, 0],
    ]);
    const y = Int32Array.from([0, 0, 1, 2]);
    expect([
      ...knnPredict(
        train,
        y,
        matrix([
          [1, 0.05],
          [0.1, 1],
        ]),
        1,
        3,
      ),
    ]).toEqual([0, 1]);
    // k = 2 for [0.6, 0.8]: one vote each for class 1 (similarity 0.8) and class 0 (0.68): 1 wins.
    expect([...knnPredict(train, y, matrix([[0.6, 0.8]]), 2, 3)]).toEqual([1]);
  });
});

describe("onnx-embedding grader", () => {
  it("gives full marks to a SimCLR encoder and reports progress and provenance", async () => {
    const progress = progressRecorder();
    const r = await gradeModel(embeddingGrader, problem, model("simclr"), { onProgress: progress.onProgress });
    expect(r).toMatchObject({ status: "graded", score: 10, provenance: { executionProvider: "cpu", inputSeed: "student-1" } });
    expect(measured(r, "Linear-probe accuracy")).toBeGreaterThan(0.95);
    expect(r.feedback.tests.map((t) => t.name)).toEqual(["Linear evaluation", "k-NN evaluation"]);
    progress.check();
  });

  it("raw pixels reach ≥ 0.95 linear accuracy, as sklearn's probe does (sanity of the protocol)", async () => {
    const r = await gradeModel(embeddingGrader, problem, model("identity"), { config: { maxDim: 64 } });
    // sklearn LogisticRegression on the same standardised pixels: 0.9749 (scripts/fixtures/embedding.py).
    expect(Math.abs(measured(r, "Linear-probe accuracy") - 0.9749)).toBeLessThan(0.005);
    expect(measured(r, "5-NN \\(cosine\\) accuracy")).toBeGreaterThan(0.95);
    expect(r.score).toBe(10);
  });

  it("gives half marks to a half-resolution image (borderline, 0.91)", async () => {
    const r = await gradeModel(embeddingGrader, problem, model("pooled"));
    expect(measured(r, "Linear-probe accuracy")).toBeCloseTo(0.91, 2);
    expect(r.score).toBe(5);
    expect(r.feedback.tests[0]!.status).toBe("partial");
  });

  it("gives nothing to a collapsed representation", async () => {
    const r = await gradeModel(embeddingGrader, problem, model("collapsed"));
    expect(measured(r, "Linear-probe accuracy")).toBeLessThan(0.2);
    expect(r).toMatchObject({ status: "graded", score: 0 });
  });

  it("scores k-NN accuracy when the metric says so", async () => {
    const r = await gradeModel(embeddingGrader, problem, model("pooled"), {
      config: { metric: "knn", thresholds: [{ min: 0.93, score: 1 }] },
    });
    expect(measured(r, "5-NN \\(cosine\\) accuracy")).toBeGreaterThan(0.93);
    expect(r.score).toBe(10);
    expect(r.feedback.tests[1]).toMatchObject({ name: "k-NN evaluation", score: 10, maxScore: 10 });
  });

  it("rejects outputs of the wrong shape or too many dimensions, saying why", async () => {
    const shape = await gradeModel(embeddingGrader, problem, model("unflattened"));
    expect(shape).toMatchObject({ status: "rejected", score: 0 });
    expect(shape.feedback.summary).toMatch(/Output 'embedding' has shape \[N, 1, 8, 8\]; expected \[N, D\]/);
    const wide = await gradeModel(embeddingGrader, problem, model("identity"));
    expect(wide).toMatchObject({ status: "rejected", score: 0 });
    expect(wide.feedback.summary).toMatch(/64 dimensions; at most 32/);
  });

  it("is deterministic", async () => {
    const a = await gradeModel(embeddingGrader, problem, model("pooled"), { seed: "x" });
    const b = await gradeModel(embeddingGrader, problem, model("pooled"), { seed: "x" });
    expect(b).toEqual(a);
  });

  it("reports broken problem data as a problem error", async () => {
    const r = await gradeModel(embeddingGrader, problem, model("pooled"), { config: { input: { name: "image", shape: ["N", 32] } } });
    expect(r.status).toBe("error");
    expect(r.feedback.summary).toMatch(/train_x\.npy has shape \[1200,1,8,8\]/);
  });

  it("publishes the signature, budget and scale, never the private files", () => {
    const config = embeddingGrader.configSchema.parse(problem.config);
    const format = embeddingGrader.answerFormat(config, "s");
    expect(format).toMatchObject({
      inputs: [{ name: "image", dtype: "float32", shape: ["N", 1, 8, 8] }],
      outputs: [{ name: "embedding", dtype: "float32", shape: ["N", "D"] }],
      maxBytes: 4_000_000,
      maxParameters: 500_000,
      maxNodes: 2000,
      maxDim: 32,
      metric: "linear",
    });
    expect(JSON.stringify(format)).not.toMatch(/\.npy/);
    expect(embeddingGrader.modelSpec!(config).budget).toMatchObject({ maxParameters: 500_000, maxNodes: 2000 });
    expect(embeddingGrader.privateFiles!(config).sort()).toEqual(["test_x.npy", "test_y.npy", "train_x.npy", "train_y.npy"]);
  });

  it("checks its config", () => {
    const bad = (over: Record<string, unknown>) => embeddingGrader.configSchema.safeParse({ ...problem.config, ...over }).success;
    expect(bad({ input: { name: "image", shape: [1, 1, 8, 8] } })).toBe(false);
    expect(
      bad({
        thresholds: [
          { min: 0.9, score: 1 },
          { min: 0.8, score: 0.5 },
        ],
      }),
    ).toBe(false);
    expect(bad({ metric: "svm" })).toBe(false);
    expect(bad({})).toBe(true);
  });
});
