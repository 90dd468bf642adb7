import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { textGrader } from "../../graders/text.ts";
import { configErrors, grade } from "./helpers.ts";

const rubric = [
  {
    id: "capacity",
    description: "Capacity as a cause",
    points: 1,
    accept: ["too many parameters", "model capacity", "/over-?parameteri[sz]ed/i"],
  },
  {
    id: "data",
    description: "Names too little data",
    points: 1,
    accept: ["small dataset", "few training examples"],
    hint: "Think about the data.",
  },
  { id: "reg", description: "Names missing regularisation", points: 1, accept: ["no regularisation", "dropout"] },
  { id: "long", description: "Names training too long", points: 1, accept: ["training for too long", "early stopping"] },
];
const config = { rubric, maxScore: 3 };
const statuses = async (cfg: unknown, text: string) => (await grade(textGrader, cfg, { text })).feedback.tests.map((t) => t.status);

const gan = {
  synonyms: { D: "discriminator", G: "generator", "mode dropping": "mode collapse" },
  rubric: [
    { id: "collapse", description: "Mode collapse", points: 1, accept: ["mode collapse"] },
    { id: "vanish", description: "Vanishing gradients", points: 1, accept: ["discriminator too strong", "vanishing gradients"] },
    { id: "minmax", description: "No convergence guarantee", points: 1, accept: ["unstable", "not converge"] },
    { id: "init", description: "Initialisation", points: 1, accept: ["initialisation"] },
    { id: "tuning", description: "Tuning", points: 1, accept: ["tuning"] },
  ],
};

describe("text grader: what a concept matches", () => {
  it("matches lemmas in any order within a clause, declared synonyms and one-letter aliases", async () => {
    for (const text of ["The modes collapse.", "Collapsing modes.", "There is mode-collapse.", "It suffers from mode dropping."]) {
      expect(await statuses(gan, text), text).toEqual(["passed", "failed", "failed", "failed", "failed"]);
    }
    expect((await statuses(gan, "When D is too strong, G learns nothing."))[1]).toBe("passed");
    // A capitalised alias matches only as written: "d" is not the discriminator.
    expect((await statuses(gan, "Section d is too strong."))[1]).toBe("failed");
  });

  it("treats spellings, hyphens and plural acronyms alike", async () => {
    const cfg = { rubric: [{ id: "hp", description: "hp", points: 1, accept: ["hyper-parameters", "regularisation"] }] };
    for (const text of ["hyperparameters matter", "Hyper parameters matter", "hyper-parameter choice", "Regularization helps"]) {
      expect(await statuses(cfg, text), text).toEqual(["passed"]);
    }
    const acr = { rubric: [{ id: "g", description: "g", points: 1, accept: ["GAN"] }] };
    expect(await statuses(acr, "GANs are hard")).toEqual(["passed"]);
  });

  it("does not match words of one phrase spread over two clauses", async () => {
    expect(await statuses(config, "The model has too many layers; people ask about parameters.")).toEqual([
      "failed",
      "failed",
      "failed",
      "failed",
    ]);
  });
});

describe("text grader: negation", () => {
  const denied = [
    "Training is not unstable.",
    "It isn't unstable at all.",
    "The initialisation doesn't matter.",
    "No tuning needed.",
    "Initialisation is, as far as I can tell from the lectures and from the original paper, never a concern.",
  ];
  it.each(denied)("a concept asserted under negation earns nothing: %s", async (text) => {
    const r = await grade(textGrader, gan, { text });
    expect(r.score).toBe(0);
    expect(r.feedback.tests.some((t) => /negation/.test(t.message))).toBe(true);
  });

  it("a relative clause after a negation is unclear: nothing earned, flagged", async () => {
    const r = await grade(textGrader, gan, { text: "G and D are never in a situation where the discriminator is too strong." });
    expect(r).toMatchObject({ score: 0, needsReview: true });
    expect(r.feedback.tests[1]!.message).toMatch(/may deny it/);
    expect(r.feedback.reviewReasons!.join()).toMatch(/relative clause after a negation/);
  });

  it("a negation in one clause does not reach the next clause", async () => {
    const r = await grade(textGrader, gan, { text: "The loss is not a problem, but the modes collapse." });
    expect(r.feedback.tests.map((t) => t.status)).toEqual(["passed", "failed", "failed", "failed", "failed"]);
  });

  it("a list after a negated verb shares its negation; a list's own negation stays in it", async () => {
    expect(await statuses(gan, "It does not need tuning, initialisation or luck.")).toEqual([
      "failed",
      "failed",
      "failed",
      "failed",
      "failed",
    ]);
    const own = await grade(textGrader, gan, { text: "These problems are tuning and initialisation, not mode collapse." });
    expect(own.feedback.tests.map((t) => t.status)).toEqual(["failed", "failed", "failed", "passed", "passed"]);
  });

  it("counts a negation that is part of the concept, and 'not only … but also'", async () => {
    expect((await statuses(gan, "Gradient descent may never converge."))[2]).toBe("passed");
    expect(await statuses(gan, "Not only tuning but also initialisation matters.")).toEqual([
      "failed",
      "failed",
      "failed",
      "passed",
      "passed",
    ]);
  });

  it("a later 'none of these' earns nothing and flags the answer with the reason", async () => {
    const r = await grade(textGrader, gan, { text: "People mention mode collapse and tuning. None of these problems is real." });
    expect(r).toMatchObject({ score: 0, needsReview: true });
    expect(r.feedback.reviewReasons!.join()).toMatch(/collapse.*may deny it/);
    const direct = await grade(textGrader, gan, { text: "Mode collapse, tuning: none of these is a problem." });
    expect(direct.score).toBe(0);
  });

  it("a list before a negated clause keeps its own polarity; a subject cut off by a parenthetical does not", async () => {
    expect(await statuses(gan, "Unstable training, mode collapse, no reliable metric to evaluate.")).toEqual([
      "passed",
      "failed",
      "passed",
      "failed",
      "failed",
    ]);
    const cut = await grade(textGrader, gan, { text: "The initialisation, as we saw in class, doesn't matter." });
    expect(cut).toMatchObject({ score: 0, needsReview: true });
  });

  it("a double negation earns nothing and goes to review", async () => {
    const r = await grade(textGrader, gan, { text: "It is not true that tuning is not needed." });
    expect(r.score).toBe(0);
    expect(r.needsReview).toBe(true);
    expect(r.feedback.reviewReasons!.join()).toMatch(/several negations/);
  });
});

describe("text grader: misconceptions", () => {
  const cfg = {
    ...gan,
    maxScore: 3,
    misconceptions: [
      { id: "vae", description: "Blames VAEs", accept: ["problems of VAE"], cap: 0, hint: "Which model is the question about?" },
      { id: "gpu", description: "Blames hardware", accept: ["GPU"], penalty: 1 },
    ],
  };

  it("a cap limits the score and flags the answer", async () => {
    const r = await grade(
      textGrader,
      cfg,
      { text: "Mode collapse, vanishing gradients and tuning are problems of VAEs, not of GANs." },
      { points: 3 },
    );
    expect(r).toMatchObject({ score: 0, needsReview: true });
    const m = r.feedback.tests.find((t) => t.name === "Misconception 1")!;
    expect(m).toMatchObject({ status: "failed", hint: "Which model is the question about?" });
    expect(m.message).toMatch(/caps the score at 0/);
    expect(r.feedback.reviewReasons!.join()).toMatch(/misconception vae/);
  });

  it("a penalty subtracts points; a contrast or a negation does not trigger it", async () => {
    const text = "Mode collapse and vanishing gradients matter; a GPU helps.";
    expect((await grade(textGrader, cfg, { text }, { points: 3 })).score).toBe(1);
    expect((await grade(textGrader, cfg, { text: "Unlike the problems of VAEs, mode collapse hits GANs." }, { points: 3 })).score).toBe(1);
    expect((await grade(textGrader, cfg, { text: "Mode collapse matters; it is not about GPUs." }, { points: 3 })).score).toBe(1);
  });
});

describe("text grader: confidence and review", () => {
  it("exact matches are sure; reordered ones less; far-apart words send the answer to review", async () => {
    const conf = async (text: string) => (await grade(textGrader, gan, { text })).feedback.tests[0]!.staffMessage!;
    expect(await conf("Mode collapse happens.")).toMatch(/confidence 1, exact/);
    expect(await conf("Collapsing modes.")).toMatch(/confidence 0.7, words in another order/);
    expect(await conf("Mode dropping happens.")).toMatch(/confidence 0.7, via a declared synonym/);
    const far = await grade(textGrader, gan, {
      text: "The mode of operation of this particular training setup makes every single output eventually collapse.",
    });
    expect(far.feedback.tests[0]!.staffMessage).toMatch(/confidence 0.4/);
    expect(far).toMatchObject({ score: 2, needsReview: true });
    expect(far.feedback.reviewReasons!.join()).toMatch(/Concept 1 \(collapse\) found with low confidence/);
  });

  it("flags a substantive answer that matched nothing, and a low score when reviewBelow is set", async () => {
    const text =
      "The network memorises the particular quirks of its inputs because it has far more freedom than the task needs, so held-out accuracy drops.";
    expect(await grade(textGrader, config, { text })).toMatchObject({ score: 0, needsReview: true });
    const some =
      "The network has too many parameters. Also it memorises the particular quirks of its inputs and held-out accuracy drops a lot.";
    expect((await grade(textGrader, config, { text: some })).needsReview).toBe(false);
    expect(await grade(textGrader, { ...config, reviewBelow: 0.5 }, { text: some })).toMatchObject({ score: 3.333333, needsReview: true });
  });
});

describe("text grader: scoring and feedback", () => {
  it("gives full marks once the cap is reached and scales to the problem's points", async () => {
    const r = await grade(textGrader, config, {
      text: "The model has too many parameters, it trained on a small data-set, and it used no dropout.",
    });
    // "no dropout" denies the regularisation concept's phrase "dropout".
    expect(r.feedback.tests.map((t) => t.status)).toEqual(["passed", "passed", "failed", "failed"]);
    expect(r.score).toBe(6.666667);
    const all = await grade(textGrader, config, { text: "Overparameterized network. Small dataset. Dropout helps. Use early stopping." });
    expect(all.score).toBe(10);
    expect(all.feedback.summary).toBe("Found 4 of 4 rubric concepts (4 rubric points, counted up to 3).");
  });

  it("shows neutral names, messages and hints: never descriptions or accepted phrasings", async () => {
    const r = await grade(textGrader, config, { text: "The learning rate was wrong." });
    expect(r.feedback.tests.map((t) => t.name)).toEqual(["Concept 1", "Concept 2", "Concept 3", "Concept 4"]);
    expect(r.feedback.tests[1]).toMatchObject({ hint: "Think about the data.", message: "Not found in your answer." });
    const studentFacing = JSON.stringify(r.feedback.tests.map(({ staffMessage: _, ...t }) => t));
    for (const c of rubric) {
      expect(studentFacing).not.toContain(c.description);
      for (const phrase of c.accept) expect(studentFacing).not.toContain(phrase);
    }
    expect(r.feedback.tests[1]!.staffMessage).toContain("Names too little data");
    expect(r.feedback.tests[1]!.answerKey).toBeUndefined();
    const revealed = await grade(textGrader, { ...config, revealAfterDue: true }, { text: "small dataset" });
    expect(revealed.feedback.tests[1]).toMatchObject({ answerKey: "Names too little data", status: "passed" });
    expect(revealed.feedback.tests[1]!.hint).toBeUndefined();
  });

  it("a bare list of terms earns listCredit; a sentence earns everything", async () => {
    const cfg = { ...config, listCredit: 0.5 };
    expect((await grade(textGrader, cfg, { text: "too many parameters, small dataset, dropout" })).score).toBe(5);
    expect((await grade(textGrader, cfg, { text: "It has too many parameters, a small dataset and dropout is missing." })).score).toBe(10);
  });

  it("rejects empty, too long and too short answers", async () => {
    expect((await grade(textGrader, config, { text: "  ... " })).feedback.summary).toBe("The answer is empty.");
    const long = await grade(textGrader, { ...config, maxLength: 20 }, { text: "too many parameters and more words" });
    expect(long.feedback.summary).toMatch(/34 characters long; the limit is 20/);
    const short = await grade(textGrader, { ...config, minWords: 5 }, { text: "too many parameters" });
    expect(short.feedback.summary).toMatch(/3 word\(s\); write at least 5/);
    expect((await grade(textGrader, config, { text: 42 })).status).toBe("rejected");
  });

  it("answerFormat says nothing of the rubric", () => {
    const format = textGrader.answerFormat(textGrader.configSchema.parse({ ...config, minWords: 5 }), "s");
    expect(format).toEqual({ kind: "text", maxLength: 5000, minWords: 5 });
  });
});

describe("text grader: regexes on RE2", () => {
  it("a catastrophic pattern grades a hostile 100k-character answer at once", async () => {
    const cfg = { rubric: [{ id: "a", description: "a", points: 1, accept: ["/^(a+)+$/"] }], maxLength: 100_000 };
    const started = performance.now();
    const r = await grade(textGrader, cfg, { text: `${"a".repeat(99_999)}!` });
    // A backtracking engine needs 2^99999 steps here; RE2 is linear. The bound only catches a regression.
    expect(performance.now() - started).toBeLessThan(5000);
    expect(r).toMatchObject({ status: "graded", score: 0 });
    expect((await grade(textGrader, cfg, { text: "aaaa" })).score).toBe(10);
  });

  it("refuses what RE2 cannot compile, naming the entry", () => {
    const bad = (accept: string[]) => ({ rubric: [{ ...rubric[0]!, accept }] });
    expect(configErrors(textGrader, bad(["model capacity", "/(a)\\1/"])).join()).toMatch(/rubric\.0\.accept\.1: .*RE2.*backreferences/);
    expect(configErrors(textGrader, bad(["/capacity(?=x)/i"])).join()).toMatch(/rubric\.0\.accept\.0: .*cannot compile/);
    expect(configErrors(textGrader, bad(["/(unclosed/i"])).join()).toMatch(/rubric\.0\.accept\.0: /);
    expect(configErrors(textGrader, bad(["/x/g"])).join()).toMatch(/only the flags i, m, s and u/);
  });
});

describe("text grader: config", () => {
  it("reports config mistakes", () => {
    expect(configErrors(textGrader, { rubric: [{ ...rubric[0]!, accept: ["?!"] }] }).join()).toMatch(/no words to match/);
    expect(configErrors(textGrader, { rubric: [{ ...rubric[0]!, accept: [] }] }).join()).toMatch(/accept/);
    expect(configErrors(textGrader, { rubric: [rubric[0], rubric[0]] }).join()).toMatch(/duplicate concept ids: capacity/);
    expect(configErrors(textGrader, { rubric, maxScore: 5 }).join()).toMatch(/maxScore: is more than the rubric's 4 points/);
    expect(configErrors(textGrader, { rubric, reviewBelow: 2 }).join()).toMatch(/reviewBelow/);
    expect(configErrors(textGrader, { rubric, minwords: 3 }).join()).toMatch(/minwords/);
    const noEffect = { rubric, misconceptions: [{ id: "m", description: "m", accept: ["x y"] }] };
    expect(configErrors(textGrader, noEffect).join()).toMatch(/misconceptions\.0: give a penalty, a cap or both/);
    expect(configErrors(textGrader, { rubric, synonyms: { "?": "x" } }).join()).toMatch(/synonyms\.\?: .*no words/);
  });

  it("selfCheck names every example the rubric misgrades, with both scores", () => {
    const cfg = textGrader.configSchema.parse({
      ...config,
      examples: [
        { text: "too many parameters and a small dataset", score: 2 },
        { text: "too many parameters", score: 3 },
        { text: "?", score: 0 },
        { text: "dropout", score: 9 },
      ],
    });
    const issues = textGrader.selfCheck!(cfg, { points: 3, privateData: new Map() });
    expect(issues.map((i) => i.path)).toEqual([
      ["examples", 1],
      ["examples", 2],
      ["examples", 3],
    ]);
    expect(issues[0]!.message).toMatch(/example 1 \("too many parameters"\) scores 1 but declares 3 \(tolerance 0.5\)/);
    expect(issues[1]!.message).toMatch(/not gradable: The answer is empty/);
    expect(issues[2]!.message).toMatch(/declares 9 points; the problem is worth 3/);
    expect(
      textGrader.selfCheck!({ ...cfg, exampleTolerance: 2, examples: cfg.examples.slice(0, 2) }, { points: 3, privateData: new Map() }),
    ).toEqual([]);
  });
});

describe("text grader: hostile answers", () => {
  it("any text grades or is rejected with a reason, never throws, and stays within the points", () => {
    const words = fc.constantFrom(
      "not",
      "no",
      "none",
      "mode",
      "collapse",
      "D",
      "G",
      ",",
      ";",
      ".",
      "\n",
      "but",
      "which",
      "unlike",
      "is",
      "-",
      "too",
      "strong",
      "isn't",
    );
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.array(words, { maxLength: 80 }).map((w) => w.join(" ")),
    );
    const cfg = textGrader.configSchema.parse({
      ...gan,
      misconceptions: [{ id: "m", description: "m", accept: ["strong collapse"], penalty: 1 }],
    });
    fc.assert(
      fc.property(text, (t) => {
        const r = textGrader.grade({ config: cfg, privateData: new Map(), answer: { text: t }, seed: "s", points: 5 }) as {
          score: number;
          status: string;
        };
        expect(["graded", "rejected"]).toContain(r.status);
        expect(r.score).toBeGreaterThanOrEqual(0);
        expect(r.score).toBeLessThanOrEqual(5);
      }),
      { numRuns: 300 },
    );
  });
});
