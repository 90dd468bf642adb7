import { Matrix } from "ml-matrix";
import { describe, expect, it } from "vitest";
import { generatorGrader } from "../../graders/onnx-generator.ts";
import { frechetDistance, meanCov, sqrtPsd, symmetricEigen } from "../../graders/onnx/frechet.ts";
import { checkMemorisation, nearestDistances } from "../../graders/onnx/memorisation.ts";
import { readNpy } from "../../graders/onnx/npy.ts";
import { ModelFault, type ModelRuntime } from "../../graders/onnx/types.ts";
import { rng } from "../../graders/random.ts";
import { localRuntime } from "../helpers/local-runtime.ts";
import { fixtureFile, gradeModel, loadProblem, measured, progressRecorder } from "../helpers/model-grading.ts";

const conditional = loadProblem("onnx-advanced", "cvae-digits");
const unconditional = loadProblem("onnx-advanced", "vae-digits");
const model = (name: string) => fixtureFile(`advanced/generator/${name}.onnx`);
const npy = (bytes: Uint8Array) => readNpy(bytes).data as Float64Array;

describe("Fréchet distance", () => {
  const mu = npy(conditional.privateData.get("real_mu.npy")!);
  const cov = npy(conditional.privateData.get("real_cov.npy")!);

  it("is 0 between identical statistics", () => {
    expect(mu.length).toBe(32);
    expect(frechetDistance(mu, cov, mu, cov)).toBeCloseTo(0, 9);
  });

  it("matches numpy's value computed by another route (eigenvalues of Σ1·Σ2)", () => {
    const reference = JSON.parse(new TextDecoder().decode(fixtureFile("advanced/generator/frechet.json"))) as { realVsNoisy: number };
    const mu2 = npy(fixtureFile("advanced/generator/frechet_mu.npy"));
    const cov2 = npy(fixtureFile("advanced/generator/frechet_cov.npy"));
    // ReLU features make both covariances singular: square roots of near-zero eigenvalues turn rounding
    // of 1e-15 into 1e-7, so two correct routes agree to about 1e-8 relative, not to the last digit.
    expect(frechetDistance(mu, cov, mu2, cov2)).toBeCloseTo(reference.realVsNoisy, 5);
    expect(frechetDistance(mu2, cov2, mu, cov)).toBeCloseTo(reference.realVsNoisy, 5);
  });

  it("takes exact square roots of PSD matrices, singular ones included", () => {
    const r = rng("frechet-test");
    const n = 6;
    // B·Bᵀ with B of rank 4: positive semi-definite and singular.
    const b = Array.from({ length: n * 4 }, () => r.normal());
    const a = Float64Array.from({ length: n * n }, (_, k) =>
      [0, 1, 2, 3].reduce((s, t) => s + b[Math.floor(k / n) * 4 + t]! * b[(k % n) * 4 + t]!, 0),
    );
    const root = sqrtPsd(a, n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        const sq = Array.from({ length: n }, (_, k) => root[i * n + k]! * root[k * n + j]!).reduce((s, v) => s + v, 0);
        expect(sq).toBeCloseTo(a[i * n + j]!, 9);
      }
    expect(
      [
        ...symmetricEigen(
          new Matrix([
            [2, 1],
            [1, 2],
          ]),
        ).values,
      ].sort(),
    ).toEqual([expect.closeTo(1, 12), expect.closeTo(3, 12)]);
  });

  it("reduces to the distance of means plus the trace terms for 1-d Gaussians", () => {
    // N(1, 4) vs N(3, 9): (1 − 3)² + 4 + 9 − 2·√36 = 5.
    expect(frechetDistance([1], [4], [3], [9])).toBeCloseTo(5, 12);
    const { mean, cov } = meanCov([1, 2, 3, 4], 4, 1);
    expect([mean[0], cov[0]]).toEqual([2.5, expect.closeTo(5 / 3, 14)]);
  });
});

describe("onnx-generator grader, conditional", () => {
  it("gives full marks to a conditional VAE decoder", async () => {
    const progress = progressRecorder();
    const r = await gradeModel(generatorGrader, conditional, model("cvae"), { onProgress: progress.onProgress });
    expect(r).toMatchObject({ status: "graded", score: 10, provenance: { executionProvider: "cpu", inputSeed: "student-1" } });
    expect(measured(r, "conditional accuracy")).toBeGreaterThan(0.95);
    expect(measured(r, "Fréchet distance")).toBeLessThan(40);
    expect(r.feedback.tests.map((t) => t.name)).toEqual(["Conditional accuracy", "Diversity", "Fréchet distance", "Memorisation check"]);
    progress.check();
  });

  it("takes the label one-hot when configured so (same decoder, same images, same result)", async () => {
    const index = await gradeModel(generatorGrader, conditional, model("cvae"));
    const onehot = await gradeModel(generatorGrader, conditional, model("cvae-onehot"), {
      config: { label: { name: "y", dtype: "float32" } },
    });
    expect(onehot.feedback).toEqual(index.feedback);
  });

  it("gives part marks when half the classes come out as the wrong digit (borderline)", async () => {
    const r = await gradeModel(generatorGrader, conditional, model("cvae-half"));
    expect(measured(r, "conditional accuracy")).toBeCloseTo(0.5, 1);
    expect(r.score).toBeCloseTo(7.5, 1);
  });

  it("gives no accuracy credit to a generator that ignores the label", async () => {
    const r = await gradeModel(generatorGrader, conditional, model("ignores-label"));
    expect(measured(r, "conditional accuracy")).toBeLessThan(0.2);
    // Chance is 0.1, where the accuracy part starts: at most a sliver of its 5 points.
    expect(r.feedback.tests[0]!.name).toBe("Conditional accuracy");
    expect(r.feedback.tests[0]!.score).toBeLessThan(0.1);
    expect(r.score).toBeLessThan(5);
  });

  it("gives nothing to a mode-collapsed generator", async () => {
    const r = await gradeModel(generatorGrader, conditional, model("collapsed"));
    expect(measured(r, "diversity")).toBe(0);
    expect(measured(r, "Fréchet distance")).toBeGreaterThan(300);
    expect(r).toMatchObject({ status: "graded", score: 0 });
  });

  it("rejects images of the wrong shape, saying which", async () => {
    const r = await gradeModel(generatorGrader, conditional, model("flat"));
    expect(r).toMatchObject({ status: "rejected", score: 0 });
    expect(r.feedback.summary).toMatch(/Output 'image' has shape \[N, 64\]; expected \[N, 1, 8, 8\]/);
  });

  it("rejects images in [-1, 1] (a tanh output) with a hint", async () => {
    const tanh: ModelRuntime = {
      ortVersion: localRuntime.ortVersion,
      async open(bytes, opts) {
        const inner = await localRuntime.open(bytes, opts);
        if (opts.role === "reference") return inner;
        return {
          ...inner,
          executionProvider: inner.executionProvider,
          run: async (feeds) => {
            const out = await inner.run(feeds);
            const image = out.image!;
            return { image: { ...image, data: (image.data as Float32Array).map((v) => 2 * v - 1) } };
          },
          close: () => inner.close(),
        };
      },
    };
    const r = await gradeModel(generatorGrader, conditional, model("cvae"), { runtime: tanh });
    expect(r).toMatchObject({ status: "rejected", score: 0 });
    expect(r.feedback.summary).toMatch(/must lie in \[0, 1\].*\(x \+ 1\) \/ 2/);
  });

  it("reports a failing reference classifier as the problem's error, not the student's", async () => {
    const broken: ModelRuntime = {
      ortVersion: localRuntime.ortVersion,
      async open(bytes, opts) {
        if (opts.role === "reference") throw new ModelFault("MODEL_LOAD_FAILED", "corrupt");
        return localRuntime.open(bytes, opts);
      },
    };
    const r = await gradeModel(generatorGrader, conditional, model("cvae"), { runtime: broken });
    expect(r.status).toBe("error");
    expect(r.feedback.summary).toMatch(/reference classifier failed/);
  });

  it("is deterministic per seed; a config seed fixes the samples for everyone", async () => {
    const a = await gradeModel(generatorGrader, conditional, model("cvae"), { seed: "alice" });
    expect(await gradeModel(generatorGrader, conditional, model("cvae"), { seed: "alice" })).toEqual(a);
    const b = await gradeModel(generatorGrader, conditional, model("cvae"), { seed: "bob" });
    expect(measured(b, "Fréchet distance")).not.toBe(measured(a, "Fréchet distance"));
    const fixed = (seed: string) => gradeModel(generatorGrader, conditional, model("cvae"), { config: { seed: "exam" }, seed });
    const [x, y] = await Promise.all([fixed("alice"), fixed("bob")]);
    expect(x).toEqual(y);
    expect(x.provenance!.inputSeed).toBe("exam");
  });
});

describe("onnx-generator grader, memorisation check", () => {
  const withoutCheck = (p: typeof conditional) => {
    const { memorisation: _, ...config } = p.config;
    return { ...p, config };
  };

  it("takes everything from a lookup table of the real digits, which otherwise scores full marks", async () => {
    for (const [problem, name] of [
      [unconditional, "lookup"],
      [conditional, "lookup-cond"],
    ] as const) {
      const unchecked = await gradeModel(generatorGrader, withoutCheck(problem), model(name));
      expect(unchecked.score, name).toBeGreaterThan(9); // real digits: perfect confidence, accuracy and Fréchet distance
      const r = await gradeModel(generatorGrader, problem, model(name));
      expect(r).toMatchObject({ status: "graded", score: 0 });
      expect(r.feedback.summary).toMatch(/^500 of 500 samples are copies of real images\./);
      const check = r.feedback.tests.at(-1)!;
      expect(check).toMatchObject({ name: "Memorisation check", status: "failed", score: 0, maxScore: 0 });
      expect(check.message).toMatch(/must make new images, not return stored ones/);
      expect(r.feedback.tests[0]!.message).toMatch(/Copies earn nothing: this part is multiplied by 0/);
    }
  });

  it("leaves a generator of new digits untouched, and tells it how far from the real ones it stays", async () => {
    const checked = await gradeModel(generatorGrader, conditional, model("cvae"));
    const unchecked = await gradeModel(generatorGrader, withoutCheck(conditional), model("cvae"));
    expect(checked.score).toBe(unchecked.score);
    expect(checked.feedback.tests.slice(0, -1)).toEqual(unchecked.feedback.tests);
    expect(checked.feedback.tests.at(-1)).toMatchObject({
      status: "passed",
      message: expect.stringMatching(/^0 of 500 samples .* No sample is a copy\./),
    });
  });

  it("scales the credit by the share of copies beyond those forgiven", () => {
    const d = Float64Array.from({ length: 100 }, (_, i) => (i < 30 ? 0.01 : 0.2));
    expect(checkMemorisation(d, { minDistance: 0.05, allowed: 0 })).toEqual({ copies: 30, factor: 0.7, medianDistance: 0.2 });
    expect(
      checkMemorisation(
        d.map((v, i) => (i < 2 ? 0.01 : 0.2)),
        { minDistance: 0.05, allowed: 0.02 },
      ).factor,
    ).toBe(1);
    // Nearest by RMS over the pixels: [0, 0] is 0.5 from [0.5, 0.5] and 0.1 from [0.1, 0.1].
    expect([...nearestDistances([0, 0, 1, 1], 2, [0.5, 0.5, 0.1, 0.1, 1, 0.8], 3, 2)]).toEqual([
      expect.closeTo(0.1, 12),
      expect.closeTo(Math.sqrt(0.02), 12),
    ]);
  });

  it("refuses reference images of another shape as the problem's error", async () => {
    const privateData = new Map(conditional.privateData);
    privateData.set("real_x.npy", conditional.privateData.get("real_mu.npy")!);
    const r = await gradeModel(generatorGrader, conditional, model("cvae"), { privateData });
    expect(r).toMatchObject({ status: "error", score: 0 });
    expect(r.feedback.summary).toMatch(/memorisation images have shape \[32\]; expected \[M, 1, 8, 8\]/);
  });
});

describe("onnx-generator grader, unconditional", () => {
  it("scores a VAE decoder highly, an undertrained one in between, noise low", async () => {
    const good = await gradeModel(generatorGrader, unconditional, model("vae"));
    const early = await gradeModel(generatorGrader, unconditional, model("vae-undertrained"));
    const noise = await gradeModel(generatorGrader, unconditional, model("noise"));
    expect(good.feedback.tests.map((t) => t.name)).toEqual(["Confidence", "Diversity", "Fréchet distance", "Memorisation check"]);
    expect(good.score).toBeGreaterThan(8);
    expect(early.score).toBeGreaterThan(3);
    expect(early.score).toBeLessThan(7);
    expect(noise.score).toBeLessThan(3);
    expect(measured(noise, "Fréchet distance")).toBeGreaterThan(300);
  });

  it("publishes signature, sampling and parts, never the reference files", () => {
    const config = generatorGrader.configSchema.parse(unconditional.config);
    const format = generatorGrader.answerFormat(config, "s");
    expect(format).toMatchObject({
      inputs: [{ name: "z", dtype: "float32", shape: ["N", 8] }],
      outputs: [{ name: "image", dtype: "float32", shape: ["N", 1, 8, 8] }],
      maxBytes: 4_000_000,
      samples: 500,
      parts: { frechet: { share: 0.6, zeroAt: 300, fullAt: 40 } },
    });
    expect(JSON.stringify(format)).not.toMatch(/classifier\.onnx|\.npy/);
    const cond = generatorGrader.configSchema.parse(conditional.config);
    expect(generatorGrader.modelSpec!(cond).inputs).toEqual([
      { name: "z", dtype: "float32", shape: ["N", 8] },
      { name: "y", dtype: "int64", shape: ["N"] },
    ]);
    expect(generatorGrader.privateFiles!(cond)).toEqual(["classifier.onnx", "real_mu.npy", "real_cov.npy", "real_x.npy"]);
    expect(format.memorisation).toMatch(/closer than 0\.05 .* copies earn nothing/);
  });

  it("checks its config", () => {
    const errors = (over: Record<string, unknown>) => {
      const r = generatorGrader.configSchema.safeParse({ ...unconditional.config, ...over });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    expect(errors({ parts: { accuracy: { weight: 1, zeroAt: 0.1, fullAt: 0.9 } } }).join()).toMatch(
      /parts.accuracy: accuracy needs a conditional/,
    );
    expect(errors({ parts: {} }).join()).toMatch(/at least one part/);
    expect(errors({ parts: { frechet: { weight: 1, zeroAt: 5, fullAt: 5 } } }).join()).toMatch(/must differ/);
    expect(errors({})).toEqual([]);
  });
});
