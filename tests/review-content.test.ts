import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { choiceGrader, type ChoiceConfig } from "../graders/choice.ts";
import { numericGrader, type NumericConfig } from "../graders/numeric.ts";
import { loadSetFromDirectory, type LoadedProblem, type LoadedSet } from "../src/catalog/index.ts";
import { answerFor, readSolutions } from "../src/catalog/solutions.ts";

/**
 * What a content review of the mid-term review checks, as tests: every statement's claim about
 * its own scoring is true, no statement gives away another problem's answer, the points follow
 * the exam's weights, the notation is one throughout, and a randomised problem's parameters keep
 * the typical mistakes apart from the answer.
 */

const DIR = path.join(import.meta.dirname, "..", "problems", "dl-midterm-review");

/** The exam's themes and their weights (the review's first slide); YOLO is a CNN, so it counts with the CNNs. */
const SECTIONS: Record<string, { share: number; problems: string[] }> = {
  "GANs and VAEs": {
    share: 50,
    problems: [
      "p3-ae-vs-vae",
      "p3-vae-kl",
      "p3-vae-loss-net",
      "vae-decoder",
      "p4-gan-difficulties",
      "p5-cgan-condition",
      "p5-cgan-generator",
    ],
  },
  "Fully connected networks and CNNs": {
    share: 30,
    problems: [
      "p1-filter-shape",
      "p2-pixel-weight",
      "p2-average-colour-net",
      "p8-yolo-output-size",
      "p8-yolo-pipeline",
      "p8-yolo-detector",
    ],
  },
  "NeuroAI, sparse coding, self-supervised learning and the rest": {
    share: 20,
    problems: [
      "p6-rsa-gram",
      "p6-rsa-rdm",
      "p6-rsa-compare",
      "p7-psychometric-curve",
      "p7-psychometric-fit",
      "factor-analysis-mean",
      "factor-analysis-covariance",
      "sparse-coding-objective",
      "sparse-coding-ista-step",
      "sparse-coding-encoder",
      "simclr-nt-xent",
      "simclr-projection-head",
      "barlow-twins-loss",
      "moco-momentum",
      "moco-queue",
      "ssl-linear-eval",
    ],
  },
};

/**
 * Text that would give a problem's answer away, by problem. `self`: the problem's own statement
 * must not contain it either (it would define what it asks).
 */
const TELLS: Record<string, { patterns: RegExp[]; self?: boolean }> = {
  "p2-pixel-weight": {
    self: true,
    patterns: [/\\d?frac\{1\}\{H\s*W\}/, /1\s*\/\s*\(\s*H\s*\*?\s*W\s*\)/, /\\d?frac\{1\}\{1024\}/, /\b1\s*\/\s*1024\b/],
  },
  "p3-vae-kl": { patterns: [/1\s*\+\s*\\log\s*\\sigma/, /\\mu_?j?\^2\s*-\s*\\sigma/, /\\tfrac12|\\frac\{1\}\{2\}\s*\\sum_\{j/] },
  "p3-ae-vs-vae": {
    self: true,
    patterns: [
      /\b(single|one|dual|two)[- ]term\b/i,
      /\b(deterministic|stochastic)\s+(encod\w*|cod\w*|latent)/i,
      /\b(encoder|VAE|autoencoder)\s+is\s+(deterministic|stochastic)/i,
      /\bELBO\b|evidence lower bound/i,
      /reparameteri[sz]/i,
    ],
  },
  "p5-cgan-condition": {
    self: true,
    patterns: [/input of the (generator|discriminator)/i, /\bD\(\s*x\s*(,|\\mid|\|)\s*y\s*\)/, /\bD\(G\(z[^)]*\)\s*,\s*y\)/],
  },
  "simclr-projection-head": {
    patterns: [
      /\b(before|without|drop\w*|discard\w*|remov\w*)\b[^.]{0,40}\bprojection head\b/i,
      /projection head[^.]{0,60}\b(discard\w*|drop\w*|remov\w*)/i,
    ],
  },
  "p6-rsa-gram": { self: true, patterns: [/r_i\^\\top\s*r_j/, /R\s*R\^\\top/, /R\s*\*?\s*\\?transpose\(R\)/] },
  "p8-yolo-output-size": { self: true, patterns: [/\(\s*(5\s*B|5\s*\\cdot\s*B|B\s*(\\cdot|\*|\\times)\s*5)\s*\+\s*C\s*\)/] },
  "p7-psychometric-curve": {
    self: true,
    patterns: [/\\gamma\s*\+\s*\(1\s*-\s*\\gamma\s*-\s*\\lambda\)/, /halfway between \$?\\gamma/, /flat at \$?1\s*-\s*\\lambda/],
  },
};

let set: LoadedSet;
const problem = (slug: string): LoadedProblem => set.problems.find((p) => p.slug === slug)!;
const choices = () => set.problems.filter((p) => p.graderType === "choice");
const flat = (s: string) => s.replace(/\s+/g, " ");

async function choiceScore(p: LoadedProblem, selected: string[]): Promise<number> {
  const result = await choiceGrader.grade({
    config: p.graderConfig as ChoiceConfig,
    privateData: new Map(),
    answer: { selected },
    seed: "s",
    points: p.points,
  });
  expect(result.status).toBe("graded");
  return result.score;
}

beforeAll(async () => {
  const loaded = await loadSetFromDirectory(DIR);
  if (!loaded.ok) throw new Error(loaded.errors.map((e) => `${e.file}: ${e.path}: ${e.message}`).join("\n"));
  set = loaded.set;
});

describe("choice problems say truly how they score", () => {
  it("P1: selecting every option scores 0 (it scored 2 of 3 under the old partial credit)", async () => {
    const p1 = problem("p1-filter-shape");
    expect((p1.graderConfig as ChoiceConfig).scoring).toBe("balanced");
    expect(
      await choiceScore(
        p1,
        (p1.graderConfig as ChoiceConfig).options.map((o) => o.id),
      ),
    ).toBe(0);
  });

  it("every multiple-answer statement states the score of selecting every option and of selecting none, and both are right", async () => {
    const multiple = choices().filter((p) => (p.graderConfig as ChoiceConfig).multiple);
    expect(multiple.length).toBeGreaterThanOrEqual(4);
    for (const p of multiple) {
      const config = p.graderConfig as ChoiceConfig;
      const text = flat(p.statement);
      const all = /Selecting every option scores ([\d.]+) points?/.exec(text);
      const none = /selecting no option scores ([\d.]+) points?/i.exec(text);
      expect(all, `${p.slug} states the score of selecting every option`).not.toBeNull();
      expect(none, `${p.slug} states the score of selecting none`).not.toBeNull();
      expect(Number(all![1]), p.slug).toBe(
        await choiceScore(
          p,
          config.options.map((o) => o.id),
        ),
      );
      expect(Number(none![1]), p.slug).toBe(await choiceScore(p, []));
      // A promise that guessing does not pay must hold for the guess of every option.
      if (/does not pay/.test(text))
        expect(
          await choiceScore(
            p,
            config.options.map((o) => o.id),
          ),
          p.slug,
        ).toBe(0);
      // The scoring the statement names is the one configured.
      expect(/\bbalanced\b/.test(text), `${p.slug}: says "balanced" iff it is`).toBe(config.scoring === "balanced");
      expect(/all or nothing/i.test(text), `${p.slug}: says "all or nothing" iff it is`).toBe(config.scoring === "all-or-nothing");
    }
  });

  it("every single-answer statement asks for exactly one option, and two picks are refused", async () => {
    for (const p of choices().filter((q) => !(q.graderConfig as ChoiceConfig).multiple)) {
      expect(flat(p.statement), p.slug).toMatch(/exactly one option/);
      const ids = (p.graderConfig as ChoiceConfig).options.map((o) => o.id);
      const r = await choiceGrader.grade({
        config: p.graderConfig as ChoiceConfig,
        privateData: new Map(),
        answer: { selected: ids.slice(0, 2) },
        seed: "s",
        points: p.points,
      });
      expect(r.status, p.slug).toBe("rejected");
    }
  });
});

describe("no statement gives away another problem's answer", () => {
  it("the text of a correct option (three words or more: shorter ones are everyday words) appears in no other statement", () => {
    const norm = (s: string) => flat(s).toLowerCase();
    for (const p of choices()) {
      const config = p.graderConfig as ChoiceConfig;
      for (const id of config.correct) {
        const text = norm(config.options.find((o) => o.id === id)!.text);
        if (text.split(" ").length < 3) continue;
        for (const other of set.problems.filter((q) => q.slug !== p.slug)) {
          expect(norm(other.statement).includes(text), `${other.slug} contains ${p.slug}'s correct option "${text}"`).toBe(false);
        }
      }
    }
  });

  it.each(Object.entries(TELLS))("%s: its answer is not in the statements", (slug, { patterns, self }) => {
    expect(problem(slug), slug).toBeDefined();
    for (const other of set.problems.filter((q) => self || q.slug !== slug)) {
      for (const pattern of patterns) expect(other.statement, `${other.slug} gives away ${slug} (${pattern})`).not.toMatch(pattern);
    }
  });
});

describe("the set reads as one exam", () => {
  it("points follow the review's weights: 50 % GANs and VAEs, 30 % FC and CNNs, 20 % the rest", () => {
    const grouped = Object.values(SECTIONS).flatMap((s) => s.problems);
    expect([...grouped].sort()).toEqual(set.problems.map((p) => p.slug).sort());
    const total = set.problems.reduce((s, p) => s + p.points, 0);
    for (const [name, { share, problems }] of Object.entries(SECTIONS)) {
      const points = problems.reduce((s, slug) => s + problem(slug).points, 0);
      expect((100 * points) / total, name).toBeCloseTo(share, 6);
    }
    // The description promises the same weights.
    const said = [...(set.description ?? "").matchAll(/\((\d+) %\)/g)].map((m) => Number(m[1]));
    expect(said).toEqual(
      Object.values(SECTIONS)
        .map((s) => s.share)
        .sort((a, b) => b - a),
    );
  });

  it("one conditional-GAN notation: G(z, y), never G(z | y) or D(x | y)", () => {
    for (const p of set.problems) expect(p.statement, p.slug).not.toMatch(/\b[GD]\(\s*[zx]\s*(\\mid|\|)\s*y\s*\)/);
    expect(problem("p5-cgan-generator").statement).toMatch(/G\(z, y\)/);
  });

  it("P1 fixes the batch size, so the device's memory cannot change the filter", () => {
    expect(flat(problem("p1-filter-shape").statement)).toMatch(/batch size \(64 images per step, on any device\)/);
  });
});

describe("randomised parameters keep the mistakes apart from the answer", () => {
  it("moco-momentum: the two updates in the wrong order (and every wrong solution) miss full marks for 500 students", async () => {
    const p = problem("moco-momentum");
    const config = p.graderConfig as NumericConfig;
    const wrong = (await readSolutions(path.join(DIR, "moco-momentum"))).filter((s) => s.kind === "wrong");
    expect(wrong.map((s) => s.name)).toContain("wrong-order.json");
    for (let i = 0; i < 500; i++) {
      const seed = `student-${i}`;
      const params = numericGrader.params!(config, seed);
      for (const solution of wrong) {
        const result = await numericGrader.grade({
          config,
          privateData: new Map(),
          answer: numericGrader.answerSchema.parse(answerFor(solution, params)),
          seed,
          points: p.points,
        });
        expect(result.score, `${solution.name} for ${seed}`).toBeLessThan(p.points);
      }
    }
  });
});
