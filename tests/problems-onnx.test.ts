import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { getGrader } from "../graders/index.ts";
import { toFloat64 } from "../graders/onnx/common.ts";
import { nearestDistances } from "../graders/onnx/memorisation.ts";
import { readNpy } from "../graders/onnx/npy.ts";
import { gradeResultSchema, type Grader } from "../graders/types.ts";
import { isJunk, isSolutionFile } from "../src/catalog/files.ts";
import { loadProblem } from "../src/catalog/problem.ts";
import { readSolutions } from "../src/catalog/solutions.ts";
import type { LoadedProblem } from "../src/catalog/types.ts";
import { preflight } from "../src/grading/onnx/preflight.ts";
import { localRuntime } from "./helpers/local-runtime.ts";

/**
 * The ONNX problems of the mid-term review, graded directly (no database, no queue, real onnxruntime):
 * each folder loads as the catalog loads it, shows students nothing private, and its solutions made by
 * scripts/fixtures/midterm_models.py grade as intended for two students: every reference to full marks,
 * every wrong model to less. Folders are loaded one by one, so the rest of the set may be in progress.
 */

const DIR = path.join(import.meta.dirname, "..", "problems", "dl-midterm-review");
const PROBLEMS: Record<string, string> = {
  "p2-average-colour-net": "onnx-function",
  "p3-vae-loss-net": "onnx-function",
  "vae-decoder": "onnx-generator",
  "p5-cgan-generator": "onnx-generator",
  "p8-yolo-detector": "onnx-detector",
  "sparse-coding-encoder": "onnx-encoder-objective",
  "simclr-nt-xent": "onnx-function",
  "barlow-twins-loss": "onnx-function",
  "ssl-linear-eval": "onnx-embedding",
};
const SEEDS = ["student-1", "student-2"];
const MAX_FILE_BYTES = 1.5 * 1024 * 1024;

/** The folder's files as the catalog reads them (relative paths; no solutions/, no macOS litter). */
function folderFiles(slug: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(DIR, slug, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      if (isJunk(p) || isSolutionFile(`${slug}/${p}`)) continue;
      if (statSync(path.join(DIR, slug, p)).isDirectory()) walk(p);
      else files.set(p, new Uint8Array(readFileSync(path.join(DIR, slug, p))));
    }
  };
  walk("");
  return files;
}

function load(slug: string): { problem: Omit<LoadedProblem, "position">; grader: Grader } {
  const result = loadProblem(slug, folderFiles(slug));
  if (!result.ok) throw new Error(`${slug} does not load:\n${result.errors.map((e) => `${e.file} ${e.path}: ${e.message}`).join("\n")}`);
  return { problem: result.problem, grader: getGrader(result.problem.graderType)! };
}

const answerOf = (model: Uint8Array) => ({
  model: { sha256: createHash("sha256").update(model).digest("hex"), size: model.length, filename: "model.onnx" },
});

const loaded = await Promise.all(
  Object.entries(PROBLEMS).map(async ([slug, type]) => ({
    slug,
    type,
    ...load(slug),
    solutions: await readSolutions(path.join(DIR, slug)),
  })),
);

it("lists every one of these problems in set.yaml", () => {
  const set = parseYaml(readFileSync(path.join(DIR, "set.yaml"), "utf8")) as { problems: string[] };
  expect(set.problems).toEqual(expect.arrayContaining(Object.keys(PROBLEMS)));
});

describe.each(loaded)("$slug ($type)", ({ type, problem, grader, solutions }) => {
  const spec = grader.modelSpec!(problem.graderConfig);

  it("loads as the catalog loads it, with a statement that names the signature", () => {
    expect(problem.graderType).toBe(type);
    expect(problem.points).toBeGreaterThanOrEqual(2);
    expect(problem.points).toBeLessThanOrEqual(20); // the set's 100 points follow the exam's weights
    for (const t of [...spec.inputs, ...spec.outputs]) expect(problem.statement, t.name).toContain(`\`${t.name}\``);
    expect(problem.statement).toMatch(/\*\*What to submit:\*\*/);
    expect(problem.statement).toMatch(/\*\*How it is graded:\*\*/);
    expect(problem.statement).toMatch(/torch\.onnx\.export[\s\S]*dynamic_axes[\s\S]*opset_version=1[3-7]/);
  });

  it("keeps its private files private: they are exactly what the config names, and answerFormat mentions none", () => {
    const assets = [...problem.assets.keys()].sort();
    expect(assets).toEqual([...(grader.privateFiles?.(problem.graderConfig) ?? [])].sort());
    for (const seed of SEEDS) {
      const format = JSON.stringify(grader.answerFormat(problem.graderConfig, seed));
      for (const file of assets) expect(format).not.toContain(file);
      expect(format).not.toMatch(/solutions\/|\.onnx|\.npy/i);
      expect(format.length).toBeLessThan(4000);
    }
    for (const bytes of problem.assets.values()) expect(bytes.length).toBeLessThan(MAX_FILE_BYTES);
  });

  it("has one reference and at least one wrong model, all small and within the budget", () => {
    expect(solutions.filter((s) => s.kind === "reference").map((s) => s.name)).toEqual(["reference.onnx"]);
    expect(solutions.filter((s) => s.kind === "wrong").length).toBeGreaterThanOrEqual(1);
    for (const s of solutions) {
      expect(s.model, s.name).toBeInstanceOf(Uint8Array);
      expect(s.model!.length, s.name).toBeLessThan(MAX_FILE_BYTES);
      // Preflight passes the wrong models too: they are graded (and lose points), not refused.
      const checked = preflight(s.model!, spec);
      expect(checked.ok ? "ok" : `${checked.code}: ${checked.message}`, s.name).toBe("ok");
    }
  });

  describe.each(SEEDS)("for %s", (seed) => {
    it.each(solutions.map((s) => [s.name, s] as const))("%s", async (_name, solution) => {
      const result = await grader.grade({
        config: problem.graderConfig,
        privateData: problem.assets,
        answer: answerOf(solution.model!),
        seed,
        points: problem.points,
        model: solution.model!,
        runtime: localRuntime,
      });
      expect(gradeResultSchema.parse(result)).toEqual(result);
      expect(result.maxScore).toBe(problem.points);
      const outcome = `${result.status} ${result.score}/${result.maxScore}: ${result.feedback.summary}`;
      if (solution.kind === "reference") expect(outcome).toBe(`graded ${problem.points}/${problem.points}: ${result.feedback.summary}`);
      else {
        expect(["graded", "rejected"], outcome).toContain(result.status);
        expect(result.score, outcome).toBeLessThan(problem.points);
      }
    });
  });
});

describe("the review's evaluation data", () => {
  const byslug = (slug: string) => loaded.find((l) => l.slug === slug)!;
  const gradeSolution = (slug: string, name: string) => {
    const { problem, grader, solutions } = byslug(slug);
    const model = solutions.find((s) => s.name === name)!.model!;
    return grader.grade({
      config: problem.graderConfig,
      privateData: problem.assets,
      answer: answerOf(model),
      seed: SEEDS[0]!,
      points: problem.points,
      model,
      runtime: localRuntime,
    });
  };
  const images = (slug: string, file: string) => {
    const t = readNpy(byslug(slug).problem.assets.get(file)!);
    const data = t.dtype === "uint8" ? toFloat64(t).map((v) => v / 255) : toFloat64(t); // the generators' images are bytes
    return { data, count: t.dims[0]!, pixels: t.data.length / t.dims[0]! };
  };

  it("ssl-linear-eval: evaluates on digits no student has (none within 0.05 RMS of load_digits)", () => {
    const digits = images("vae-decoder", "real_x.npy"); // all 1,797 of load_digits: what a student trains on
    expect(digits.count).toBe(1797);
    for (const file of ["train_x.npy", "test_x.npy"]) {
      const split = images("ssl-linear-eval", file);
      const nearest = nearestDistances(split.data, split.count, digits.data, digits.count, digits.pixels);
      expect(Math.min(...nearest), file).toBeGreaterThanOrEqual(0.05);
    }
  });

  it("ssl-linear-eval: both thresholds sit above the PCA baseline, which scores nothing", async () => {
    const baselines = JSON.parse(
      readFileSync(path.join(import.meta.dirname, "fixtures/onnx/advanced/embedding/midterm-ssl-baselines.json"), "utf8"),
    ) as { sklearnProbe: Record<string, { linear: number }> };
    const pca = baselines.sklearnProbe["wrong-pca"]!.linear;
    const thresholds = (byslug("ssl-linear-eval").problem.graderConfig as { thresholds: { min: number }[] }).thresholds;
    expect(Math.min(...thresholds.map((t) => t.min))).toBeGreaterThan(pca + 0.05);
    expect(baselines.sklearnProbe.reference!.linear).toBeGreaterThan(Math.max(...thresholds.map((t) => t.min)));
    const r = await gradeSolution("ssl-linear-eval", "wrong-pca.onnx");
    expect(r).toMatchObject({ status: "graded", score: 0 });
    expect(Number(/Linear-probe accuracy (\d\.\d+)/.exec(r.feedback.summary)![1])).toBeCloseTo(pca, 2);
  });

  it.each(["vae-decoder", "p5-cgan-generator"])("%s: a lookup table of the real digits earns nothing", async (slug) => {
    const r = await gradeSolution(slug, "wrong-lookup.onnx");
    expect(r).toMatchObject({ status: "graded", score: 0 });
    expect(r.feedback.summary).toMatch(/^500 of 500 samples are copies of real images\./);
  });
});
