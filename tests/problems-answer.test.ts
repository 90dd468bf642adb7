import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { getGrader } from "../graders/index.ts";
import { renderStatement } from "../graders/params.ts";
import { gradeResultSchema, type Grader, type Params } from "../graders/types.ts";
import { loadProblem } from "../src/catalog/problem.ts";
import { answerFor, readSolutions, type Solution } from "../src/catalog/solutions.ts";
import type { LoadedProblem } from "../src/catalog/types.ts";

/**
 * The answer (non-ONNX) problems of the mid-term review, one folder at a time (the set as a
 * whole needs the ONNX problems too): each loads as the catalog would, shows each student their
 * own numbers, and its solutions grade as they claim, through the real grader, for two students.
 */

const SET = join(import.meta.dirname, "..", "problems", "dl-midterm-review");
const SEEDS = ["student-ada", "student-grace"] as const;

/** slug → randomised (params differ per student). */
const PROBLEMS: Record<string, boolean> = {
  "p1-filter-shape": false,
  "p2-pixel-weight": false,
  "p3-ae-vs-vae": false,
  "p3-vae-kl": true,
  "p4-gan-difficulties": false,
  "p5-cgan-condition": false,
  "p6-rsa-gram": true,
  "p6-rsa-rdm": true,
  "p6-rsa-compare": true,
  "p7-psychometric-curve": true,
  "p7-psychometric-fit": true,
  "p8-yolo-output-size": true,
  "p8-yolo-pipeline": false,
  "factor-analysis-mean": true,
  "factor-analysis-covariance": true,
  "sparse-coding-objective": true,
  "sparse-coding-ista-step": true,
  "simclr-projection-head": false,
  "moco-momentum": true,
  "moco-queue": false,
};

/** The folder's files by relative path, leaving out solutions/ exactly as the catalog's readers do. */
async function folderFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const walk = async (rel: string): Promise<void> => {
    for (const ent of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = rel === "" ? ent.name : `${rel}/${ent.name}`;
      if (path === "solutions") continue;
      if (ent.isDirectory()) await walk(path);
      else if (ent.isFile()) files.set(path, new Uint8Array(await readFile(join(dir, path))));
    }
  };
  await walk("");
  return files;
}

interface Loaded {
  problem: Omit<LoadedProblem, "position">;
  grader: Grader;
  solutions: Solution[];
}

async function load(slug: string): Promise<Loaded> {
  const dir = join(SET, slug);
  const result = loadProblem(slug, await folderFiles(dir));
  if (!result.ok) throw new Error(`${slug} does not load:\n${result.errors.map((e) => `${e.file}: ${e.path}: ${e.message}`).join("\n")}`);
  const grader = getGrader(result.problem.graderType);
  if (!grader) throw new Error(`${slug}: grader "${result.problem.graderType}" is not registered`);
  return { problem: result.problem, grader, solutions: await readSolutions(dir) };
}

const paramsOf = ({ grader, problem }: Loaded, seed: string): Params => grader.params?.(problem.graderConfig, seed) ?? {};

describe("mid-term review: answer problems", () => {
  it("are all listed in set.yaml", async () => {
    const set = parseYaml(await readFile(join(SET, "set.yaml"), "utf8")) as { problems: string[] };
    expect(set.problems).toEqual(expect.arrayContaining(Object.keys(PROBLEMS)));
  });

  describe.each(Object.entries(PROBLEMS))("%s", (slug, randomised) => {
    it("loads, with a reference and a wrong solution, and points between 1 and 5", async () => {
      const { problem, solutions } = await load(slug);
      expect(problem.points).toBeGreaterThanOrEqual(1);
      expect(problem.points).toBeLessThanOrEqual(5);
      expect(problem.graderType).not.toMatch(/^onnx-/);
      expect(solutions.some((s) => s.kind === "reference")).toBe(true);
      expect(solutions.some((s) => s.kind === "wrong")).toBe(true);
      // The statement says what to submit and how it is graded.
      expect(problem.statement).toMatch(/\*\*What to submit:\*\*/);
      expect(problem.statement).toMatch(/\*\*How it is graded:\*\*/);
    });

    it(randomised ? "gives each student their own parameters, the same every time" : "has no parameters", async () => {
      const loaded = await load(slug);
      const [a, b] = SEEDS.map((seed) => paramsOf(loaded, seed));
      expect(paramsOf(loaded, SEEDS[0])).toEqual(a);
      if (randomised) {
        expect(Object.keys(a!).length).toBeGreaterThan(0);
        expect(a).not.toEqual(b);
      } else {
        expect(a).toEqual({});
      }
      for (const [i, seed] of SEEDS.entries()) {
        const params = i === 0 ? a! : b!;
        // Every placeholder is filled; the answer format shows the same numbers as the statement.
        expect(renderStatement(loaded.problem.statement, params)).not.toMatch(/\{\{/);
        if (randomised) expect(loaded.grader.answerFormat(loaded.problem.graderConfig, seed).params).toEqual(params);
      }
    });

    it.each(SEEDS)("grades every reference to full marks and every wrong solution lower (seed %s)", async (seed) => {
      const loaded = await load(slug);
      const { problem, grader, solutions } = loaded;
      const params = paramsOf(loaded, seed);
      for (const solution of solutions) {
        const answer = answerFor(solution, params);
        expect(grader.answerSchema.safeParse(answer).success, `${solution.name}: answer shape`).toBe(true);
        const result = await grader.grade({
          config: problem.graderConfig,
          privateData: problem.assets,
          answer,
          seed,
          points: problem.points,
        });
        expect(gradeResultSchema.parse(result)).toEqual(result);
        expect(result.status, `${solution.name}: ${result.feedback.summary}`).toBe("graded");
        expect(result.maxScore).toBe(problem.points);
        if (solution.kind === "reference") {
          expect(result.score, `${solution.name}: ${result.feedback.summary}`).toBe(problem.points);
        } else {
          expect(result.score, `${solution.name}: ${result.feedback.summary}`).toBeLessThan(problem.points);
        }
      }
    });
  });
});
