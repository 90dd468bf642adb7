import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { textGrader } from "../graders/text.ts";
import { loadSetFromTarGz } from "../src/catalog/index.ts";
import { multipart, tarGzOf } from "./helpers/bundles.ts";
import { createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

/**
 * Rubric self-tests: a text problem's `examples` are graded at load and upload, and a rubric that
 * misgrades one is refused by name. The review's own text problems must pass theirs.
 */
const REVIEW = "problems/dl-midterm-review";
const ZOO = "tests/fixtures/sets/grader-zoo";

async function textProblems() {
  const out = [];
  for (const slug of await readdir(REVIEW)) {
    const file = path.join(REVIEW, slug, "problem.yaml");
    const doc = parse(await readFile(file, "utf8").catch(() => "{}")) ?? {};
    if (doc.grader?.type === "text") out.push({ slug, points: doc.points as number, grader: doc.grader });
  }
  return out;
}

describe("the review's text problems", () => {
  it("ship at least eight examples each, good and bad, and grade every one within its tolerance", async () => {
    const problems = await textProblems();
    expect(problems.map((p) => p.slug).sort()).toEqual(["p4-gan-difficulties", "p8-yolo-pipeline"]);
    for (const p of problems) {
      const { type: _, ...raw } = p.grader;
      const config = textGrader.configSchema.parse(raw);
      expect(config.examples.length, p.slug).toBeGreaterThanOrEqual(8);
      expect(
        config.examples.some((e) => e.score === 0),
        `${p.slug}: a bad example`,
      ).toBe(true);
      expect(
        config.examples.some((e) => e.score === p.points),
        `${p.slug}: a full-marks example`,
      ).toBe(true);
      for (const [i, example] of config.examples.entries()) {
        const r = await textGrader.grade({ config, privateData: new Map(), answer: { text: example.text }, seed: "s", points: p.points });
        expect(Math.abs(r.score - example.score), `${p.slug} example ${i}: ${example.text}`).toBeLessThanOrEqual(config.exampleTolerance);
      }
      expect(textGrader.selfCheck!(config, { points: p.points, privateData: new Map() })).toEqual([]);
    }
  });
});

const shortText = (extra: string) =>
  [
    "title: Short text",
    "points: 2",
    "statement: Name two reasons GANs are hard to train.",
    "grader:",
    "  type: text",
    "  maxScore: 2",
    "  rubric:",
    "    - { id: collapse, description: Mode collapse, points: 1, accept: [mode collapse] }",
    '    - { id: minmax, description: Min-max game, points: 1, accept: ["min-max", "/(nash)\\\\1/i"] }',
    extra,
  ].join("\n");

const withExamples = [
  "  examples:",
  "    - { text: Mode collapse and a min-max game., score: 2 }",
  "    - { text: The modes collapse., score: 2, note: one reason only - misgraded on purpose }",
  "    - { text: Nothing relevant here., score: 0 }",
].join("\n");

describe("the catalog", () => {
  it("refuses, at load, a rubric that misgrades its examples, naming each example and both scores", async () => {
    const bundle = await tarGzOf(ZOO, (dir) =>
      writeFile(path.join(dir, "short-text/problem.yaml"), shortText(withExamples).replace(', "/(nash)\\\\1/i"', "")),
    );
    const loaded = await loadSetFromTarGz(bundle);
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.errors).toEqual([
      {
        file: "short-text/problem.yaml",
        path: "grader.examples[1]",
        message: expect.stringMatching(/example 1 \("The modes collapse\."\) scores 1 but declares 2 \(tolerance 0\.5\)/),
      },
    ]);
  });
});

describe("POST /v1/problem-sets with text rubrics", () => {
  let h: Harness;
  let w: World;
  beforeAll(async () => {
    h = await createHarness("rubric-examples");
    w = await createWorld(h, { students: 0 });
  });
  afterAll(() => h?.close());

  const upload = async (yaml: string) => {
    const bundle = await tarGzOf(ZOO, (dir) => writeFile(path.join(dir, "short-text/problem.yaml"), yaml));
    return h.app.inject({
      method: "POST",
      url: "/v1/problem-sets",
      headers: { authorization: `Bearer ${w.instructor.token}` },
      payload: multipart("bundle", "zoo.tar.gz", bundle) as never,
    });
  };

  it("is a 422 naming the entry for a regex RE2 cannot run (a backreference), and stores nothing", async () => {
    const res = await upload(shortText(""));
    expect(res.statusCode, res.body).toBe(422);
    const { error } = res.json();
    expect(error.code).toBe("INVALID_BUNDLE");
    expect(error.details).toEqual([
      {
        file: "short-text/problem.yaml",
        path: "grader.rubric[1].accept[1]",
        message: expect.stringMatching(/\/\(nash\)\\1\/i: the linear-time regex engine \(RE2\) cannot compile it .*backreferences/),
      },
    ]);
    expect(await h.db.problemSet.count()).toBe(0);
  });

  it("is a 422 naming the example a rubric misgrades; a rubric true to its examples is accepted", async () => {
    const bad = await upload(shortText(withExamples).replace(', "/(nash)\\\\1/i"', ""));
    expect(bad.statusCode, bad.body).toBe(422);
    expect(bad.json().error.details.map((d: { path: string }) => d.path)).toEqual(["grader.examples[1]"]);
    const good = await upload(shortText(withExamples.replace("score: 2, note", "score: 1, note")).replace(', "/(nash)\\\\1/i"', ""));
    expect(good.statusCode, good.body).toBe(201);
  });
});
