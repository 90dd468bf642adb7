import { describe, expect, it } from "vitest";
import { normalise, stem, textGrader } from "../../graders/text.ts";
import { configErrors, grade } from "./helpers.ts";

const rubric = [
  {
    id: "capacity",
    description: "Capacity as a cause",
    points: 1,
    accept: ["too many parameters", "model capacity", "/over-?parameteri[sz]ed/i"],
  },
  { id: "data", description: "Names too little data", points: 1, accept: ["small dataset", "not enough data", "few training examples"] },
  { id: "reg", description: "Names missing regularisation", points: 1, accept: ["no regularization", "without dropout"] },
  { id: "long", description: "Names training too long", points: 1, accept: ["training for too long", "early stopping"] },
];
const config = { rubric, maxScore: 3 };

describe("text normalisation", () => {
  it("ignores case, accents, punctuation and simple inflections", () => {
    expect(normalise("Self-Supervised  LEARNING, naïvely!")).toEqual(normalise("self supervised learning naively"));
    expect(stem("parameters")).toBe(stem("parameter"));
    expect(stem("overfitting")).toBe(stem("overfit"));
    expect(stem("regularisation")).toBe(stem("regularization"));
    expect(stem("biases")).toBe(stem("bias"));
    expect(stem("classes")).toBe(stem("class"));
    expect(stem("GANs".toLowerCase())).toBe("gan");
    expect(stem("trained")).toBe(stem("training"));
  });
});

describe("text grader", () => {
  it("gives full marks once the cap is reached", async () => {
    const text = "The model has too many parameters, it trained on a small data-set, and there was no regularisation.";
    const r = await grade(textGrader, config, { text });
    expect(r).toMatchObject({ status: "graded", score: 10, needsReview: false });
    expect(r.feedback.tests.map((t) => t.status)).toEqual(["passed", "passed", "passed", "failed"]);
    expect(r.feedback.tests[0]).toMatchObject({ name: "Capacity as a cause", score: 3.333333, maxScore: 3.333333, visibility: "visible" });
    expect(r.feedback.summary).toBe("Found 3 of 4 rubric concepts.");
  });

  it("counts concepts beyond the cap only up to it", async () => {
    const text = "Overparameterized network, not enough data, no regularization, and training for too long.";
    const r = await grade(textGrader, config, { text });
    expect(r.score).toBe(10);
    expect(r.feedback.summary).toBe("Found 4 of 4 rubric concepts (4 rubric points, counted up to 3).");
  });

  it("gives partial credit for some concepts", async () => {
    const r = await grade(textGrader, config, { text: "It is over-parameterised." });
    expect(r.score).toBe(3.333333);
    expect(r.feedback.tests[0]).toMatchObject({ status: "passed" });
  });

  it("gives 0 to a wrong answer without revealing the accepted phrasings", async () => {
    const r = await grade(textGrader, config, { text: "The learning rate was wrong." });
    expect(r).toMatchObject({ status: "graded", score: 0, needsReview: false });
    const feedback = JSON.stringify(r.feedback);
    for (const c of rubric) for (const phrase of c.accept) expect(feedback).not.toContain(phrase);
  });

  it("flags a substantive answer that matched nothing for review", async () => {
    const text =
      "The network memorises the particular quirks of its inputs because it has far more freedom than the task needs, so held-out accuracy drops.";
    const r = await grade(textGrader, config, { text });
    expect(r).toMatchObject({ score: 0, needsReview: true });
  });

  it("flags a low score on a long answer when reviewBelow is set", async () => {
    const text =
      "The network has too many parameters. Also it memorises the particular quirks of its inputs and held-out accuracy drops a lot.";
    expect((await grade(textGrader, config, { text })).needsReview).toBe(false);
    const r = await grade(textGrader, { ...config, reviewBelow: 0.5 }, { text });
    expect(r).toMatchObject({ score: 3.333333, needsReview: true });
  });

  it("flags a concept found only after a negation and does not award it", async () => {
    const r = await grade(textGrader, config, { text: "It is not a small dataset." });
    expect(r).toMatchObject({ score: 0, needsReview: true });
    expect(r.feedback.tests[1]!.message).toMatch(/negation/);
  });

  it("scales to the problem's points", async () => {
    const r = await grade(textGrader, { rubric: rubric.slice(0, 2) }, { text: "too many parameters" }, { points: 4 });
    expect(r.score).toBe(2);
    expect(r.feedback.tests[0]).toMatchObject({ score: 2, maxScore: 2 });
  });

  it("rejects empty, too long and too short answers", async () => {
    expect((await grade(textGrader, config, { text: "  ... " })).feedback.summary).toBe("The answer is empty.");
    const long = await grade(textGrader, { ...config, maxLength: 20 }, { text: "too many parameters and more words" });
    expect(long).toMatchObject({ status: "rejected" });
    expect(long.feedback.summary).toMatch(/34 characters long; the limit is 20/);
    const short = await grade(textGrader, { ...config, minWords: 5 }, { text: "too many parameters" });
    expect(short).toMatchObject({ status: "rejected" });
    expect(short.feedback.summary).toMatch(/3 word\(s\); write at least 5/);
    expect((await grade(textGrader, config, { text: 42 })).status).toBe("rejected");
  });

  it("reports config mistakes, invalid regexes included", () => {
    const bad = (accept: string[]) => ({ rubric: [{ ...rubric[0]!, accept }] });
    expect(configErrors(textGrader, bad(["/(unclosed/i"])).join()).toMatch(/rubric\.0\.accept\.0: .*invalid regular expression/);
    expect(configErrors(textGrader, bad(["/x/g"])).join()).toMatch(/only the flags i, m, s and u/);
    expect(configErrors(textGrader, bad(["?!"])).join()).toMatch(/no words to match/);
    expect(configErrors(textGrader, bad([])).join()).toMatch(/accept/);
    expect(configErrors(textGrader, { rubric: [rubric[0], rubric[0]] }).join()).toMatch(/duplicate concept ids: capacity/);
    expect(configErrors(textGrader, { rubric, maxScore: 5 }).join()).toMatch(/maxScore: is more than the rubric's 4 points/);
    expect(configErrors(textGrader, { rubric, reviewBelow: 2 }).join()).toMatch(/reviewBelow/);
    expect(configErrors(textGrader, { rubric, minwords: 3 }).join()).toMatch(/minwords/);
  });

  it("answerFormat says nothing of the rubric", () => {
    const format = textGrader.answerFormat(textGrader.configSchema.parse({ ...config, minWords: 5 }), "s");
    expect(format).toEqual({ kind: "text", maxLength: 5000, minWords: 5 });
  });
});
