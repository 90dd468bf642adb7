import { describe, expect, it } from "vitest";
import { onnxEncoderObjectiveGrader as grader } from "../../graders/onnx-encoder-objective.ts";
import { ista, largestEigenvalue, objectives, randomDictionary, sparseSignals } from "../../graders/onnx/basic-ista.ts";
import { rng } from "../../graders/random.ts";
import type { GradeResult } from "../../graders/types.ts";
import { localRuntime } from "../helpers/local-runtime.ts";
import { fixtureFile, gradeModel, loadProblem, type GradeOptions } from "../helpers/model-grading.ts";

const problem = (slug: string) => loadProblem("onnx-basic", slug);
const grade = (slug: string, modelFile: string, opts?: GradeOptions) =>
  gradeModel(grader, problem(slug), fixtureFile(`basic/encoder/${modelFile}`), opts);

const ratioOf = (r: GradeResult): number => Number(/ ([0-9.]+)× that of ISTA/.exec(r.feedback.tests[0]!.message)![1]);

describe("sparse coding reference", () => {
  it("makes unit-norm dictionaries and finds the largest eigenvalue", () => {
    const d = 6;
    const k = 10;
    const D = randomDictionary(d, k, rng("s", "dict"));
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += D[i * k + j]! ** 2;
      expect(s).toBeCloseTo(1, 6);
    }
    expect(largestEigenvalue(Float64Array.from([2, 0, 0, 0, 5, 0, 0, 0, 1]), 3)).toBeCloseTo(5, 9);
    expect(largestEigenvalue(Float64Array.from([2, 1, 1, 2]), 2)).toBeCloseTo(3, 9);
  });

  it("ISTA converges to the LASSO optimum (subgradient conditions hold)", () => {
    const [d, k, lambda] = [8, 16, 0.1];
    const D = randomDictionary(d, k, rng("s", "dict"));
    const x = sparseSignals(D, d, k, { count: 5, sparsity: 2, noise: 0.01 }, rng("s", "signals"));
    const h = ista(x, D, d, k, lambda, 5000);
    for (let s = 0; s < 5; s++) {
      for (let j = 0; j < k; j++) {
        // g_j = (Dᵀ(x − D h))_j must equal λ·sign(h_j) where h_j ≠ 0 and lie in [−λ, λ] where h_j = 0.
        let g = 0;
        for (let i = 0; i < d; i++) {
          let dh = 0;
          for (let b = 0; b < k; b++) dh += D[i * k + b]! * h[s * k + b]!;
          g += D[i * k + j]! * (x[s * d + i]! - dh);
        }
        const hj = h[s * k + j]!;
        if (hj !== 0) expect(g).toBeCloseTo(lambda * Math.sign(hj), 5);
        else expect(Math.abs(g)).toBeLessThanOrEqual(lambda + 1e-6);
      }
    }
    const zero = objectives(x, new Float64Array(5 * k), D, d, k, lambda);
    const best = objectives(x, h, D, d, k, lambda);
    best.forEach((v, i) => expect(v).toBeLessThan(zero[i]!));
  });
});

describe("onnx-encoder-objective grading", () => {
  it("scores unrolled ISTA full, one step and the zero encoder 0", async () => {
    const good = await grade("sparse-encoder", "ista50.onnx");
    expect(good).toMatchObject({ status: "graded", score: 5 });
    expect(ratioOf(good)).toBeGreaterThan(1);
    expect(ratioOf(good)).toBeLessThanOrEqual(1.05);
    const oneStep = await grade("sparse-encoder", "one_step.onnx");
    expect(oneStep.score).toBe(0);
    expect(ratioOf(oneStep)).toBeGreaterThan(2);
    const zero = await grade("sparse-encoder", "zero.onnx");
    expect(zero.score).toBe(0);
    expect(zero.feedback.tests[1]!.message).toMatch(/^100\.0% of code entries have \|h\| < 0\.001 \(ISTA: [0-9.]+%\)\. Informational\.$/);
    expect(good.feedback.tests.map((t) => [t.name, t.visibility])).toEqual([
      ["Objective", "visible"],
      ["Sparsity", "visible"],
      ["Objective breakdown (staff)", "hidden"],
    ]);
    expect(good.provenance).toEqual({ executionProvider: "cpu", ortVersion: localRuntime.ortVersion, inputSeed: "student-1" });
  });

  it("interpolates linearly between the full and zero ratios", async () => {
    const r = await grade("sparse-encoder", "one_step.onnx", { config: { scoring: { full: 1.5, zero: 4 } } });
    const ratio = ratioOf(r);
    expect(r.score).toBeCloseTo(((4 - ratio) / 2.5) * 5, 2);
    expect(r.score).toBeGreaterThan(0);
    expect(r.score).toBeLessThan(5);
    // The edge: `full` just above the ratio is full marks, just below it a little less.
    const ratio50 = ratioOf(await grade("sparse-encoder", "ista50.onnx"));
    const above = await grade("sparse-encoder", "ista50.onnx", { config: { scoring: { full: ratio50 + 0.001, zero: 2 } } });
    expect(above.score).toBe(5);
    const below = await grade("sparse-encoder", "ista50.onnx", { config: { scoring: { full: ratio50 - 0.01, zero: 2 } } });
    expect(below.score).toBeLessThan(5);
    expect(below.score).toBeGreaterThan(4.9);
  });

  it("gives sparsity credit with a weight, but never to codes that earn no objective credit", async () => {
    const good = await grade("sparse-encoder-file", "ista50.onnx");
    const [objective, sparsity] = good.feedback.tests;
    expect(objective).toMatchObject({ score: 4, maxScore: 4 });
    expect(sparsity!.maxScore).toBe(1);
    expect(sparsity!.score).toBeGreaterThan(0.5);
    expect(sparsity!.score).toBeLessThan(1);
    expect(good.score).toBeCloseTo(4 + sparsity!.score, 6);
    const zero = await grade("sparse-encoder-file", "zero.onnx");
    expect(zero.score).toBe(0);
    expect(zero.feedback.tests[1]!.message).toMatch(/No credit while the objective earns none/);
  });

  it("is deterministic per seed; a config seed fixes signals and dictionary for everyone", async () => {
    const a = await grade("sparse-encoder", "one_step.onnx", { seed: "alice" });
    expect(await grade("sparse-encoder", "one_step.onnx", { seed: "alice" })).toEqual(a);
    const b = await grade("sparse-encoder", "one_step.onnx", { seed: "bob" });
    expect(ratioOf(b)).not.toBe(ratioOf(a));
    const fa = await grade("sparse-encoder", "one_step.onnx", { seed: "alice", config: { seed: "exam" } });
    const fb = await grade("sparse-encoder", "one_step.onnx", { seed: "bob", config: { seed: "exam" } });
    expect(fb.feedback).toEqual(fa.feedback);
    expect(fb.provenance?.inputSeed).toBe("exam");
  });

  it("runs the signals in batches and reports progress", async () => {
    const calls: [number, number][] = [];
    await grade("sparse-encoder", "zero.onnx", { onProgress: (d, t) => calls.push([d, t]) });
    expect(calls).toEqual([
      [1, 2],
      [2, 2],
    ]);
  });

  it("rejects a wrong output shape and a wrong input name", async () => {
    const shape = await grade("sparse-encoder", "bad_shape.onnx");
    expect(shape).toMatchObject({ status: "rejected", score: 0 });
    expect(shape.feedback.summary).toBe(
      "Your model could not be evaluated (MODEL_BAD_OUTPUT): Output 'h' has shape [N, 16]; expected [N, 32].",
    );
    const name = await grade("sparse-encoder", "ista50.onnx", { config: { input: "signals" } });
    expect(name.feedback.summary).toMatch(/^The model's inputs are 'x', 'D'; this problem feeds exactly 'signals', 'D'\./);
    const output = await grade("sparse-encoder", "ista50.onnx", { config: { output: "codes" } });
    expect(output.feedback.summary).toBe("The model has no output named 'codes' (its outputs: 'h').");
  });

  it("reports an unusable dictionary as the problem's error", async () => {
    const missing = await grade("sparse-encoder-file", "zero.onnx", { privateData: new Map() });
    expect(missing).toMatchObject({ status: "error" });
    expect(missing.feedback.summary).toMatch(/dictionary D\.npy is missing/);
    const wrong = await grade("sparse-encoder-file", "zero.onnx", { config: { dictionary: { file: "D.npy", shape: [16, 30] } } });
    expect(wrong.feedback.summary).toMatch(/D\.npy is float32 \[16, 32\]; expected float32 \[16, 30\]/);
    // A bare file name takes d and k from the file (named dims in the spec).
    const bare = await grade("sparse-encoder-file", "ista50.onnx", { config: { dictionary: "D.npy" } });
    expect(bare.status).toBe("graded");
    expect(bare.feedback.tests[0]!.score).toBe(4);
  });
});

describe("onnx-encoder-objective config and answer format", () => {
  it("shows the signature, lambda and scoring, never the dictionary", () => {
    const sparseEncoder = problem("sparse-encoder");
    expect(sparseEncoder.type).toBe("onnx-encoder-objective");
    const config = grader.configSchema.parse(sparseEncoder.config);
    const spec = grader.modelSpec!(config);
    expect(spec.inputs).toEqual([
      { name: "x", dtype: "float32", shape: ["N", 16] },
      { name: "D", dtype: "float32", shape: [16, 32] },
    ]);
    expect(spec.outputs).toEqual([{ name: "h", dtype: "float32", shape: ["N", 32] }]);
    const format = grader.answerFormat(config, "s");
    expect(format).toMatchObject({ lambda: 0.1, signals: 64, scoring: { full: 1.05, zero: 2 }, maxNodes: 2000 });
    expect(JSON.stringify(format)).not.toMatch(/seed|dictionary|ista/i);
    const bare = grader.configSchema.parse({ dictionary: "D.npy", lambda: 0.1, dictionaryInput: null });
    expect(grader.modelSpec!(bare).inputs).toEqual([{ name: "x", dtype: "float32", shape: ["N", "d"] }]);
    expect(grader.privateFiles!(bare)).toEqual(["D.npy"]);
    expect(grader.privateFiles!(config)).toEqual([]);
  });

  it("reports mistakes in problem.yaml", () => {
    const issues = (raw: unknown) => {
      const r = grader.configSchema.safeParse(raw);
      expect(r.success).toBe(false);
      return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
    };
    const dictionary = { shape: [4, 8] };
    expect(issues({ dictionary, lambda: 0.1, scoring: { full: 2, zero: 1 } })).toMatch(/scoring: needs full < zero/);
    expect(issues({ dictionary, lambda: 0.1, signals: { sparsity: 9 } })).toMatch(/signals.sparsity: at most k = 8/);
    expect(issues({ dictionary, lambda: 0 })).toMatch(/lambda/);
    expect(issues({ dictionary, lambda: 0.1, output: "x" })).toMatch(/distinct names/);
    expect(issues({ dictionary: { shape: [64, 4096] }, lambda: 0.1, signals: { count: 10000 } })).toMatch(/too much work/);
  });
});
