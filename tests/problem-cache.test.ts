import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProblemSetService } from "../src/services/problem-sets.ts";
import { createHarness, type Harness } from "./helpers/harness.ts";
import { localRuntime } from "./helpers/local-runtime.ts";

const SET = "tests/fixtures/sets/onnx-basic";
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let h: Harness;
let problems: { id: string; slug: string }[];
beforeAll(async () => {
  h = await createHarness("problem-cache");
  await h.loadSet(SET);
  problems = await h.db.problem.findMany({ select: { id: true, slug: true }, orderBy: { position: "asc" } });
}, 60_000);
afterAll(() => h?.close());

describe("the worker's problem cache", () => {
  it("never holds more than its byte budgets, and a file larger than the budget is read but not kept", async () => {
    // ~100 KB for private files: the digits test set (~120 KB) never fits, the small references do.
    const service = new ProblemSetService(h.db, { SEED_SECRET: "x".repeat(16), PROBLEM_CACHE_MB: 0.1, PROBLEM_CONFIG_CACHE_MB: 0.004 });
    const { blobs, problems: configs } = service.cache;
    let files = 0;
    for (let round = 0; round < 2; round++)
      for (const p of problems) {
        const g = await service.loadGradable(p.id);
        for (const [path, bytes] of g.privateData) {
          files++;
          // Whether from the cache or the database, the bytes are the stored file's.
          expect(sha(bytes)).toBe(g.assetHashes[path]);
          expect(bytes).toEqual(new Uint8Array(readFileSync(`${SET}/${p.slug}/${path}`)));
        }
        expect(blobs.calculatedSize).toBeLessThanOrEqual(blobs.maxSize);
        expect(configs.calculatedSize).toBeLessThanOrEqual(configs.maxSize);
      }
    expect(files).toBeGreaterThan(3);
    // The budgets bit: not every problem and file was kept.
    expect(configs.size).toBeLessThan(problems.length);
    expect(configs.size).toBeGreaterThan(0);
    const digits = await service.loadGradable(problems.find((p) => p.slug === "digits-classifier")!.id);
    const big = [...digits.privateData.values()].filter((b) => b.byteLength > blobs.maxSize);
    expect(big.length).toBeGreaterThan(0);
    for (const b of big) expect(blobs.has(sha(b))).toBe(false);
  });

  it("a cached problem grades the same as one read from the database", async () => {
    const id = problems.find((p) => p.slug === "digits-classifier")!.id;
    const service = new ProblemSetService(h.db, { SEED_SECRET: "x".repeat(16) });
    const fresh = await service.loadGradable(id);
    expect(service.cache.problems.has(id)).toBe(true);
    for (const hash of Object.values(fresh.assetHashes)) expect(service.cache.blobs.has(hash)).toBe(true);
    const cached = await service.loadGradable(id);
    expect(cached.config).toBe(fresh.config); // the same parsed object: no second read or parse

    const model = new Uint8Array(readFileSync("tests/fixtures/onnx/basic/classifier/trained.onnx"));
    const answer = { model: { sha256: sha(model), size: model.length, filename: "model.onnx" } };
    const grade = (p: typeof fresh) =>
      p.grader.grade({ config: p.config, privateData: p.privateData, answer, seed: "s", points: p.points, model, runtime: localRuntime });
    const [a, b] = [await grade(fresh), await grade(cached)];
    expect(a.status).toBe("graded");
    expect(a.score).toBeGreaterThan(0);
    expect(b).toEqual(a);
  });
});
