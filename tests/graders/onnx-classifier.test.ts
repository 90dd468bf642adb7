import { describe, expect, it } from "vitest";
import { onnxClassifierGrader as grader } from "../../graders/onnx-classifier.ts";
import { argmaxRows, classMetrics, topConfusions } from "../../graders/onnx/metrics-basic.ts";
import type { GradeResult } from "../../graders/types.ts";
import { localRuntime } from "../helpers/local-runtime.ts";
import { fixtureFile, gradeModel, loadProblem, type GradeOptions } from "../helpers/model-grading.ts";

const problem = loadProblem("onnx-basic", "digits-classifier");
const { type, config: baseConfig } = problem;
const grade = (modelFile: string, opts?: GradeOptions) => gradeModel(grader, problem, fixtureFile(`basic/classifier/${modelFile}`), opts);

const byName = (r: GradeResult, name: string) => r.feedback.tests.find((t) => t.name === name)!;

describe("classification metrics", () => {
  it("counts a confusion matrix, accuracy, recall and sklearn's macro-F1", () => {
    // Classes 0..3; class 3 never occurs nor is predicted, so macro-F1 averages over 0..2 (as sklearn).
    const m = classMetrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 4);
    expect(m.confusion).toEqual([
      [1, 1, 0, 0],
      [0, 2, 0, 0],
      [1, 0, 1, 0],
      [0, 0, 0, 0],
    ]);
    expect(m.accuracy).toBeCloseTo(4 / 6, 12);
    expect(m.recall.slice(0, 3)).toEqual([0.5, 1, 0.5]);
    expect(m.recall[3]).toBeNaN();
    // F1: class 0 = 2·1/(2+2) = 0.5, class 1 = 2·2/(2+3) = 0.8, class 2 = 2·1/(2+1) = 2/3.
    expect(m.macroF1).toBeCloseTo((0.5 + 0.8 + 2 / 3) / 3, 12);
    expect(topConfusions(m.confusion, ["a", "b", "c", "d"])).toEqual(["a → b: 1", "c → a: 1"]);
    expect([...argmaxRows([0.1, 0.9, 0.5, 0.5, 3, -1], 3, 2)]).toEqual([1, 0, 0]);
  });
});

describe("onnx-classifier grading", () => {
  it("scores the trained, under-trained and random CNNs by accuracy thresholds", async () => {
    const trained = await grade("trained.onnx");
    expect(trained).toMatchObject({ status: "graded", score: 10 });
    expect(trained.feedback.summary).toBe("Accuracy 0.9711 on the test set: reached the ≥ 0.9 threshold: 100% of the points.");
    expect(byName(trained, "Accuracy").message).toBe("Accuracy 0.9711 (437 of 450); reached the ≥ 0.9 threshold: 100% of the points.");
    expect(byName(trained, "Macro-F1")).toMatchObject({ score: 0, maxScore: 0 });
    expect(byName(trained, "Macro-F1").message).toMatch(/^Macro-F1 0\.9\d+ \(informational\)\.$/);
    const weak = await grade("undertrained.onnx");
    expect(weak.score).toBe(2.5);
    expect(byName(weak, "Accuracy").message).toMatch(/^Accuracy 0\.6111 .*≥ 0\.5 threshold: 25% of the points\.$/);
    const random = await grade("random.onnx");
    expect(random.score).toBe(0);
    expect(random.feedback.summary).toMatch(/below every threshold \(the lowest is 0\.5\): no points/);
    expect(trained.provenance).toEqual({ executionProvider: "cpu", ortVersion: localRuntime.ortVersion, inputSeed: "student-1" });
  });

  it("shows per-class recall to students and the confusions only to staff", async () => {
    const r = await grade("undertrained.onnx");
    const recall = byName(r, "Per-class recall");
    expect(recall.visibility).toBe("visible");
    expect(recall.message.split("\n")).toHaveLength(11);
    expect(recall.message.split("\n")[0]).toBe("class  recall");
    expect(recall.message).toMatch(/^0 +1\.0000$/m);
    const confusions = byName(r, "Confusions (staff)");
    expect(confusions.visibility).toBe("hidden");
    expect(confusions.message).toMatch(/^Most frequent: \d → \d: \d+/);
    expect(confusions.message).toMatch(/Confusion matrix \(rows true, columns predicted\):\n0: 45 0 0/);
  });

  it("awards a threshold reached exactly and not one a hair above (the threshold edge)", async () => {
    const at = await grade("trained.onnx", {
      config: {
        thresholds: [
          { min: 437 / 450, score: 1 },
          { min: 0.5, score: 0.5 },
        ],
      },
    });
    expect(at.score).toBe(10);
    const above = await grade("trained.onnx", {
      config: {
        thresholds: [
          { min: 438 / 450, score: 1 },
          { min: 0.5, score: 0.5 },
        ],
      },
    });
    expect(above.score).toBe(5);
  });

  it("scores by macro-F1 when asked, with accuracy informational", async () => {
    const r = await grade("undertrained.onnx", {
      config: {
        metric: "macro-f1",
        thresholds: [
          { min: 0.6, score: 1 },
          { min: 0.55, score: 0.5 },
        ],
      },
    });
    expect(r.score).toBe(5); // macro-F1 0.58: between the two thresholds
    expect(byName(r, "Macro-F1")).toMatchObject({ score: 5, maxScore: 10 });
    expect(byName(r, "Accuracy")).toMatchObject({ score: 0, maxScore: 0 });
    expect(r.feedback.summary).toMatch(/^Macro-F1 0\.5\d+ on the test set/);
  });

  it("batches the test set: any batch size gives the same result, with progress per batch", async () => {
    const calls: [number, number][] = [];
    const small = await grade("undertrained.onnx", { config: { batchSize: 100 }, onProgress: (d, t) => calls.push([d, t]) });
    expect(calls).toEqual([1, 2, 3, 4, 5].map((d) => [d, 5]));
    expect(small.feedback).toEqual((await grade("undertrained.onnx")).feedback);
    expect(await grade("undertrained.onnx", { seed: "other" })).toMatchObject({ score: small.score, feedback: small.feedback });
  });

  it("rejects a wrong input name, output name or class count with clear messages", async () => {
    const name = await grade("bad_name.onnx");
    expect(name).toMatchObject({ status: "rejected", score: 0 });
    expect(name.feedback.summary).toMatch(/^The model's inputs are 'input'; this problem feeds exactly 'x'\./);
    const output = await grade("trained.onnx", { config: { output: { name: "probs" } } });
    expect(output.feedback.summary).toBe("The model has no output named 'probs' (its outputs: 'logits').");
    const classes = await grade("trained.onnx", { config: { classes: 11 } });
    expect(classes).toMatchObject({ status: "rejected" });
    expect(classes.feedback.summary).toMatch(/Output 'logits' has shape \[N, 10\]; expected \[N, 11\]/);
  });

  it("reports a broken test set as the problem's error", async () => {
    const missing = await grade("trained.onnx", { privateData: new Map() });
    expect(missing).toMatchObject({ status: "error" });
    expect(missing.feedback.summary).toMatch(/test_x\.npy is missing/);
    const shape = await grade("trained.onnx", { config: { input: { name: "x", shape: ["N", 64] } } });
    expect(shape.feedback.summary).toMatch(/test_x\.npy is float32 \[450, 1, 8, 8\]; expected float32 \[M, 64\]/);
    const labels = await grade("trained.onnx", { config: { classes: 9 } });
    expect(labels.feedback.summary).toMatch(/test_y\.npy has labels outside 0\.\.8/);
    const swapped = await grade("trained.onnx", { config: { data: { x: "test_x.npy", y: "test_x.npy" } } });
    expect(swapped.feedback.summary).toMatch(/test_x\.npy is float32 \[450, 1, 8, 8\]; expected int64 \[450\]/);
  });
});

describe("onnx-classifier config and answer format", () => {
  it("shows signature, classes, metric and thresholds, never the data", () => {
    const config = grader.configSchema.parse(baseConfig);
    expect(type).toBe("onnx-classifier");
    const spec = grader.modelSpec!(config);
    expect(spec.outputs).toEqual([{ name: "logits", dtype: "float32", shape: ["N", 10] }]);
    expect(grader.answerFormat(config, "s")).toEqual({
      inputs: [{ name: "x", dtype: "float32", shape: ["N", 1, 8, 8] }],
      outputs: spec.outputs,
      ...spec.budget,
      classes: 10,
      metric: "accuracy",
      thresholds: config.thresholds,
    });
    expect(grader.privateFiles!(config)).toEqual(["test_x.npy", "test_y.npy"]);
  });

  it("reports mistakes in problem.yaml", () => {
    const issues = (raw: unknown) => {
      const r = grader.configSchema.safeParse(raw);
      expect(r.success).toBe(false);
      return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
    };
    expect(issues({ ...baseConfig, input: { name: "x", shape: [1, 8, 8] } })).toMatch(/input.shape: must be a named batch dim/);
    expect(issues({ ...baseConfig, thresholds: [] })).toMatch(/thresholds/);
    expect(issues({ ...baseConfig, metric: "auc" })).toMatch(/metric/);
    expect(issues({ ...baseConfig, classes: 1 })).toMatch(/classes/);
  });
});
