import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { onnxFunctionGrader } from "../../graders/onnx-function.ts";
import { computeBuiltin, builtinSchema, type BuiltinRef } from "../../graders/onnx/builtins.ts";
import type { F64 } from "../../graders/onnx/builtins-math.ts";
import { budgetSchema } from "../../graders/onnx/types.ts";
import { loadSetFromTarGz } from "../../src/catalog/index.ts";
import { tarGzOf } from "../helpers/bundles.ts";
import { localRuntime } from "../helpers/local-runtime.ts";
import { fixtureFile, gradeModel, loadProblem, type GradeOptions } from "../helpers/model-grading.ts";

const problem = (slug: string) => loadProblem("onnx-basic", slug);
const grade = (slug: string, modelFile: string, opts?: GradeOptions) =>
  gradeModel(onnxFunctionGrader, problem(slug), fixtureFile(`basic/${modelFile}`), opts);

const f64 = (dims: number[], values: number[]): F64 => ({ dims, data: Float64Array.from(values) });
const run = (ref: Record<string, unknown>, inputs: Record<string, F64>): number[] => [
  ...computeBuiltin(builtinSchema.parse(ref) as BuiltinRef, inputs).data,
];

describe("onnx-function builtins: hand-computed values", () => {
  it("average-colour averages each channel over its pixels", () => {
    expect(run({ builtin: "average-colour" }, { x: f64([1, 2, 1, 2], [1, 3, 2, 6]) })).toEqual([2, 4]);
  });

  it("vae-kl is −½Σ(1 + logvar − mu² − e^logvar) per row", () => {
    const out = run({ builtin: "vae-kl" }, { mu: f64([2, 2], [1, 0, 0, 0]), logvar: f64([2, 2], [0, 0, Math.log(2), 0]) });
    expect(out[0]).toBeCloseTo(0.5, 12);
    expect(out[1]).toBeCloseTo(-0.5 * (Math.log(2) - 1), 12);
  });

  it("vae-loss adds summed MSE or BCE to beta · KL", () => {
    const inputs = { x: f64([1, 2], [1, 0]), x_hat: f64([1, 2], [0.5, 0.5]), mu: f64([1, 2], [1, 0]), logvar: f64([1, 2], [0, 0]) };
    expect(run({ builtin: "vae-loss", reconstruction: "mse" }, inputs)[0]).toBeCloseTo(0.5 + 0.5, 12);
    expect(run({ builtin: "vae-loss", reconstruction: "bce", beta: 2 }, inputs)[0]).toBeCloseTo(2 * Math.log(2) + 2 * 0.5, 12);
  });

  it("gram-matrix is X Xᵀ, or 1 − Pearson correlation as an RDM", () => {
    expect(run({ builtin: "gram-matrix" }, { x: f64([2, 2], [1, 2, 3, 4]) })).toEqual([5, 11, 11, 25]);
    const rdm = run({ builtin: "gram-matrix", dissimilarity: true }, { x: f64([3, 3], [1, 2, 3, 3, 2, 1, 2, 4, 6]) });
    [0, 2, 0, 2, 0, 2, 0, 2, 0].forEach((v, i) => expect(rdm[i]).toBeCloseTo(v, 12));
  });

  it("nt-xent: two views per image, partners identical", () => {
    // Views (1,0), (0,1), (1,0), (0,1): each has its partner at similarity 1 and two others at 0.
    const z = f64([2, 2], [1, 0, 0, 1]);
    expect(run({ builtin: "nt-xent", temperature: 1 }, { z1: z, z2: z })[0]).toBeCloseTo(-1 + Math.log(2 + Math.E), 12);
    expect(run({ builtin: "nt-xent", temperature: 0.5 }, { z1: z, z2: z })[0]).toBeCloseTo(-2 + Math.log(2 + Math.E ** 2), 12);
  });

  it("barlow-twins standardises over the batch (unbiased by default) and weighs off-diagonals by lambda", () => {
    const one = f64([2, 1], [1, -1]);
    // Unbiased std √2: C = ½, loss (1 − ½)²; biased std 1: C = 1, loss 0.
    expect(run({ builtin: "barlow-twins", lambda: 0.1 }, { z1: one, z2: one })[0]).toBeCloseTo(0.25, 12);
    expect(run({ builtin: "barlow-twins", lambda: 0.1, unbiased: false }, { z1: one, z2: one })[0]).toBeCloseTo(0, 12);
    const two = f64([2, 2], [1, 1, -1, -1]); // C is all ones: only the two off-diagonal terms count
    expect(run({ builtin: "barlow-twins", lambda: 0.1, unbiased: false }, { z1: two, z2: two })[0]).toBeCloseTo(0.2, 12);
  });

  it("soft-threshold shrinks towards zero by lambda", () => {
    expect(run({ builtin: "soft-threshold", lambda: 0.5 }, { x: f64([4], [-2, -0.3, 0.3, 1]) })).toEqual([-1.5, 0, 0, 0.5]);
  });
});

describe("onnx-function builtins agree with PyTorch-exported references within 1e-5", () => {
  // Each reference model graded against its builtin at two batch sizes: the models' free N is also checked.
  const pairs: [string, string, Record<string, unknown>?][] = [
    ["average-colour", "reference/average_colour.onnx", { reference: { builtin: "average-colour" } }],
    ["vae-kl", "reference/vae_kl.onnx"],
    ["vae-loss", "reference/vae_loss_bce_beta05.onnx"],
    ["gram-matrix", "reference/gram_matrix.onnx", { reference: { builtin: "gram-matrix" }, outputs: [{ name: "g" }] }],
    ["rdm", "reference/rdm.onnx"],
    ["nt-xent", "reference/nt_xent_t05.onnx"],
    ["barlow-twins", "reference/barlow_l0005.onnx"],
    ["soft-threshold", "reference/soft_threshold_l05.onnx"],
  ];
  for (const [slug, file, extra] of pairs) {
    it(`${slug}`, async () => {
      for (const batch of [3, 16]) {
        const r = await grade(slug, file, { config: { ...extra, rtol: 1e-5, atol: 1e-5, batch, cases: 5 } });
        expect(r.score, `${slug} at batch ${batch}: ${r.feedback.tests.map((t) => t.message).join(" | ")}`).toBe(r.maxScore);
      }
    });
  }
});

describe("onnx-function grading", () => {
  it("gives full marks to correct models, with one visible test per case", async () => {
    for (const [slug, file] of [
      ["average-colour", "function/average_colour_ok.onnx"],
      ["vae-kl", "function/vae_kl_ok.onnx"],
      ["gram-matrix", "function/gram_ok.onnx"],
      ["nt-xent", "function/nt_xent_ok.onnx"],
      ["barlow-twins", "function/barlow_ok.onnx"],
      ["soft-threshold", "function/soft_threshold_ok.onnx"],
    ]) {
      const r = await grade(slug!, file!);
      expect(r, `${slug}: ${r.feedback.summary}`).toMatchObject({ status: "graded", score: r.maxScore });
      expect(r.feedback.tests).toHaveLength(10);
      expect(r.feedback.tests.every((t) => t.visibility === "visible" && t.status === "passed")).toBe(true);
      expect(r.feedback.summary).toBe("10 of 10 cases match the reference within tolerance (rtol 0.0001, atol 0.00001).");
    }
  });

  it("gives 0 to subtly wrong models and says where, without reference values", async () => {
    for (const [slug, file] of [
      ["average-colour", "function/average_colour_wrong_axis.onnx"],
      ["vae-kl", "function/vae_kl_no_half.onnx"],
      ["gram-matrix", "function/gram_mean.onnx"],
      ["nt-xent", "function/nt_xent_temp1.onnx"],
      ["barlow-twins", "function/barlow_offdiag_all.onnx"],
    ]) {
      const r = await grade(slug!, file!);
      expect(r, `${slug}`).toMatchObject({ status: "graded", score: 0 });
      for (const [i, t] of r.feedback.tests.entries()) {
        expect(t.message).toMatch(new RegExp(`^case ${i + 1}: max abs error [0-9.e+-]+ at [a-z0-9_]+(\\[[0-9, ]+\\])?`));
        expect(t.message).not.toMatch(/expected|reference value/i);
      }
    }
    const avg = await grade("average-colour", "function/average_colour_wrong_axis.onnx");
    expect(avg.feedback.tests[0]!.message).toMatch(/^case 1: max abs error 0\.\d+ at y\[\d, \d\]; 12 of 12 values of y outside tolerance$/);
  });

  it("scores the share of cases within tolerance (a model wrong only on some inputs)", async () => {
    // max(x − λ, 0) is wrong only where x < −λ; with 16 values in [−0.55, 1] per case some cases have none.
    const config = {
      inputs: [{ name: "x", shape: ["N", 16], distribution: { kind: "uniform", low: -0.55, high: 1 } }],
      batch: 1,
      cases: 20,
    };
    const r = await grade("soft-threshold", "function/soft_threshold_positive_only.onnx", { config });
    const passed = r.feedback.tests.filter((t) => t.status === "passed").length;
    expect(passed).toBeGreaterThan(0);
    expect(passed).toBeLessThan(20);
    expect(r.score).toBeCloseTo((passed / 20) * 2, 6);
    expect(r.feedback.summary).toContain(`${passed} of 20 cases`);
    expect(await grade("soft-threshold", "function/soft_threshold_positive_only.onnx", { config })).toEqual(r);
  });

  it("applies rtol and atol at the edge (a model off by a constant 3e-5)", async () => {
    const loose = await grade("soft-threshold", "function/soft_threshold_offset.onnx", { config: { atol: 1e-4, rtol: 0 } });
    expect(loose.score).toBe(2);
    const tight = await grade("soft-threshold", "function/soft_threshold_offset.onnx", { config: { atol: 1e-5, rtol: 0 } });
    expect(tight.score).toBe(0);
    expect(tight.feedback.tests[0]!.message).toMatch(/max abs error 3.0e-5 at y\[/);
  });

  it("rejects a wrong input name, a wrong output name and a wrong output shape with clear messages", async () => {
    const name = await grade("vae-kl", "function/vae_kl_bad_name.onnx");
    expect(name).toMatchObject({ status: "rejected", score: 0 });
    expect(name.feedback.summary).toBe(
      "The model's inputs are 'mean', 'logvar'; this problem feeds exactly 'mu', 'logvar'. Name them when exporting (e.g. input_names in torch.onnx.export).",
    );
    const output = await grade("rdm", "function/gram_ok.onnx");
    expect(output.feedback.summary).toBe("The model has no output named 'rdm' (its outputs: 'g').");
    const shape = await grade("gram-matrix", "function/gram_not_transposed.onnx");
    expect(shape).toMatchObject({ status: "rejected" });
    expect(shape.feedback.summary).toBe(
      "Your model could not be evaluated (MODEL_BAD_OUTPUT): Output 'g' has shape [6, 6]; expected [N, N].",
    );
    const nhwc = await grade("average-colour", "function/average_colour_nhwc.onnx");
    expect(nhwc.feedback.summary).toMatch(/Output 'y' has shape \[N, 8\]; expected \[N, 3\]/);
    expect(name.provenance).toMatchObject({ executionProvider: "cpu", inputSeed: "student-1" });
  });

  it("rejects a model that onnxruntime cannot run on the declared inputs", async () => {
    // The problem feeds float64; the model was exported for float32.
    const config = { inputs: [{ name: "x", dtype: "float64", shape: ["N", 16] }] };
    const r = await grade("soft-threshold", "function/soft_threshold_ok.onnx", { config });
    expect(r).toMatchObject({ status: "rejected", score: 0 });
    expect(r.feedback.summary).toMatch(/^Your model could not be evaluated \(MODEL_RUN_FAILED\): .*tensor\(double\)/);
  });

  it("is deterministic per seed; a config seed fixes the inputs for everyone", async () => {
    const config = { inputs: [{ name: "x", shape: ["N", 16], distribution: { kind: "uniform", low: -0.6, high: 1 } }], batch: 1 };
    const file = "function/soft_threshold_positive_only.onnx";
    const a = await grade("soft-threshold", file, { config, seed: "alice" });
    expect(await grade("soft-threshold", file, { config, seed: "alice" })).toEqual(a);
    const b = await grade("soft-threshold", file, { config, seed: "bob" });
    expect(b.feedback.tests.map((t) => t.message)).not.toEqual(a.feedback.tests.map((t) => t.message));
    expect(a.provenance).toEqual({ executionProvider: "cpu", ortVersion: localRuntime.ortVersion, inputSeed: "alice" });
    const fixed = { ...config, seed: 42 };
    const fa = await grade("soft-threshold", file, { config: fixed, seed: "alice" });
    const fb = await grade("soft-threshold", file, { config: fixed, seed: "bob" });
    expect(fb.feedback).toEqual(fa.feedback);
    expect(fa.provenance?.inputSeed).toBe("42");
  });

  it("reports progress per case, reference runs included", async () => {
    const calls: [number, number][] = [];
    await grade("gram-matrix", "function/gram_ok.onnx", { config: { cases: 3 }, onProgress: (d, t) => calls.push([d, t]) });
    expect(calls).toEqual([1, 2, 3, 4, 5, 6].map((d) => [d, 6]));
    const builtin: [number, number][] = [];
    await grade("vae-kl", "function/vae_kl_ok.onnx", { config: { cases: 2 }, onProgress: (d, t) => builtin.push([d, t]) });
    expect(builtin).toEqual([
      [1, 2],
      [2, 2],
    ]);
  });

  it("makes a broken reference the problem's error, not the student's", async () => {
    const outputs = [{ name: "g", dtype: "float32", shape: ["N", "N"] }]; // given, so that the reference is first read when it runs
    const missing = await grade("gram-matrix", "function/gram_ok.onnx", { seed: "s", privateData: new Map(), config: { outputs } });
    expect(missing).toMatchObject({ status: "error", score: 0 });
    expect(missing.feedback.summary).toMatch(/reference model reference\.onnx is missing/);
    const wrongRef = new Map([["reference.onnx", fixtureFile("basic/function/average_colour_bad_name.onnx")]]);
    const broken = await grade("gram-matrix", "function/gram_ok.onnx", { seed: "s", privateData: wrongRef, config: { outputs } });
    expect(broken).toMatchObject({ status: "error" });
    expect(broken.feedback.summary).toMatch(/does not match the config: The model's inputs are 'image'/);
    // Barlow Twins with a batch of 1 has a zero std: the builtin is not finite.
    const barlow = await grade("barlow-twins", "function/barlow_ok.onnx", { config: { batch: 1 } });
    expect(barlow).toMatchObject({ status: "error" });
    expect(barlow.feedback.summary).toMatch(/barlow-twins builtin is not finite/);
  });
});

describe("onnx-function config, spec and answer format", () => {
  const errors = (raw: unknown): string => {
    const r = onnxFunctionGrader.configSchema.safeParse(raw);
    expect(r.success).toBe(false);
    return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
  };
  const x = { name: "x", shape: ["N", 4] };

  it("reports mistakes in problem.yaml", () => {
    expect(errors({ reference: { builtin: "vae-kl" }, inputs: [x], outputs: [{ name: "kl" }] })).toMatch(
      /reads exactly the inputs mu, logvar \(got x\)/,
    );
    expect(errors({ reference: { builtin: "soft-threshold" }, inputs: [x], outputs: [{ name: "y" }] })).toMatch(/lambda/);
    expect(errors({ reference: { builtin: "nope" }, inputs: [x], outputs: [{ name: "y" }] })).toMatch(/reference/);
    expect(
      errors({ reference: { builtin: "soft-threshold", lambda: 1 }, inputs: [{ ...x, dtype: "int64" }], outputs: [{ name: "y" }] }),
    ).toMatch(/inputs.0.distribution: a int64 input needs distribution kind "integers"/);
    expect(
      errors({
        reference: { builtin: "soft-threshold", lambda: 1 },
        inputs: [{ ...x, shape: ["N", "D"] }],
        outputs: [{ name: "y" }],
        batch: { N: 2 },
      }),
    ).toMatch(/batch: gives no size for the free dimension 'D'/);
    expect(errors({ reference: { builtin: "gram-matrix" }, inputs: [x], outputs: [{ name: "g", shape: ["N", 4] }] })).toMatch(
      /gives \[N, N\], not \[N, 4\]/,
    );
    expect(errors({ reference: "../ref.onnx", inputs: [x], outputs: [{ name: "y", shape: ["N"] }] })).toMatch(/inside the problem folder/);
    expect(errors({ reference: { builtin: "soft-threshold", lambda: 1 }, inputs: [x], outputs: [{ name: "y" }], tolerance: 1 })).toMatch(
      /tolerance/,
    );
    const big = { reference: { builtin: "soft-threshold", lambda: 1 }, inputs: [x], outputs: [{ name: "y" }], batch: 65536, cases: 200 };
    expect(errors(big)).toMatch(/cases: cases × batch would draw 52428800 input values; at most 33554432/);
  });

  it("accepts [1] for a scalar loss, integer inputs and per-dimension batch sizes", () => {
    const ok = onnxFunctionGrader.configSchema.safeParse({
      reference: { builtin: "nt-xent", temperature: 0.1 },
      inputs: [
        { name: "z1", shape: ["N", 4] },
        { name: "z2", shape: ["N", 4] },
      ],
      outputs: [{ name: "loss", shape: [1] }],
      batch: { N: 8 },
    });
    expect(ok.success).toBe(true);
    const ints = onnxFunctionGrader.configSchema.safeParse({
      reference: "ref.onnx",
      inputs: [{ name: "idx", dtype: "int64", shape: ["N"], distribution: { kind: "integers", low: 0, high: 9 } }],
      outputs: [{ name: "y", shape: ["N", 3] }],
    });
    expect(ints.success).toBe(true);
  });

  it("gives the signature, budget (merged over defaults) and tolerances, never the reference", () => {
    const ntXent = problem("nt-xent");
    expect(ntXent.type).toBe("onnx-function");
    const config = onnxFunctionGrader.configSchema.parse({ ...ntXent.config, budget: { maxNodes: 500 } });
    const spec = onnxFunctionGrader.modelSpec!(config);
    expect(spec.outputs).toEqual([{ name: "loss", dtype: "float32", shape: [] }]);
    expect(spec.budget).toEqual(budgetSchema.parse({ maxNodes: 500 }));
    expect(spec.budget).toMatchObject({ maxBytes: 16 * 1024 * 1024, maxParameters: 5_000_000, maxNodes: 500 });
    const format = onnxFunctionGrader.answerFormat(config, "s");
    expect(format).toEqual({ inputs: spec.inputs, outputs: spec.outputs, ...spec.budget, cases: 10, batch: 8, rtol: 1e-4, atol: 1e-5 });
    expect(JSON.stringify(format)).not.toMatch(/builtin|temperature|reference/);
    const averageColour = problem("average-colour");
    expect(averageColour.type).toBe("onnx-function");
    const file = onnxFunctionGrader.configSchema.parse(averageColour.config);
    expect(onnxFunctionGrader.privateFiles!(file)).toEqual(["reference.onnx"]);
    expect(JSON.stringify(onnxFunctionGrader.answerFormat(file, "s"))).not.toMatch(/reference/);
  });
});

describe("onnx-function outputs given by name only (API.md): dtype and shape come from the reference", () => {
  const upload = (edit?: (dir: string) => Promise<void>) =>
    tarGzOf("tests/fixtures/sets/onnx-basic", edit).then((bundle) => loadSetFromTarGz(bundle));
  const setYaml = async (dir: string, outputs: string) => {
    const file = path.join(dir, "gram-matrix/problem.yaml");
    await writeFile(file, (await readFile(file, "utf8")).replace("    - { name: g }", outputs));
  };

  it("loads a bundle whose outputs are [{name}], storing the reference's signature", async () => {
    const loaded = await upload();
    expect(loaded.ok ? "ok" : JSON.stringify(loaded.errors)).toBe("ok");
    if (!loaded.ok) return;
    const gram = loaded.set.problems.find((p) => p.slug === "gram-matrix")!;
    expect((gram.graderConfig as { outputs: unknown }).outputs).toEqual([{ name: "g", dtype: "float32", shape: ["N", "N"] }]);
    expect(onnxFunctionGrader.answerFormat(onnxFunctionGrader.configSchema.parse(gram.graderConfig), "s")).toMatchObject({
      outputs: [{ name: "g", dtype: "float32", shape: ["N", "N"] }],
    });
  });

  it("grades the same whether the catalog or grade() reads the signature", async () => {
    const r = await grade("gram-matrix", "function/gram_ok.onnx");
    const explicit = await grade("gram-matrix", "function/gram_ok.onnx", { config: { outputs: [{ name: "g", shape: ["N", "N"] }] } });
    expect(r).toEqual(explicit);
    expect(r).toMatchObject({ status: "graded", score: 2 });
  });

  it("refuses (422) an output the reference does not have, or a reference that is not a model, naming the field", async () => {
    const missing = await upload((dir) => setYaml(dir, "    - { name: gram }"));
    expect(missing.ok).toBe(false);
    if (!missing.ok)
      expect(missing.errors).toContainEqual({
        file: "gram-matrix/problem.yaml",
        path: "grader.outputs[0]",
        message: "the reference model reference.onnx has no output 'gram' (its outputs: 'g')",
      });
    const broken = await upload((dir) => writeFile(path.join(dir, "gram-matrix/reference.onnx"), "not a model"));
    expect(broken.ok).toBe(false);
    if (!broken.ok)
      expect(broken.errors.find((e) => e.path === "grader.reference")?.message).toMatch(
        /^the reference model reference\.onnx is refused: /,
      );
    const r = await grade("gram-matrix", "function/gram_ok.onnx", { config: { outputs: [{ name: "gram" }] } });
    expect(r).toMatchObject({ status: "error", score: 0 });
    expect(r.feedback.summary).toMatch(/could not be read from its reference: .* has no output 'gram'/);
  });

  it("keeps what the config gives: an explicit shape is not replaced", async () => {
    const loaded = await upload((dir) => setYaml(dir, "    - { name: g, shape: [N, N], dtype: float32 }"));
    expect(loaded.ok).toBe(true);
    if (loaded.ok)
      expect((loaded.set.problems.find((p) => p.slug === "gram-matrix")!.graderConfig as { outputs: unknown }).outputs).toEqual([
        { name: "g", dtype: "float32", shape: ["N", "N"] },
      ]);
  });
});
