import { describe, expect, it } from "vitest";
import { choiceGrader } from "../../graders/choice.ts";
import { configErrors, grade } from "./helpers.ts";

const options = [
  { id: "a", text: "ReLU" },
  { id: "b", text: "Sigmoid" },
  { id: "c", text: "Tanh" },
  { id: "d", text: "Identity" },
];
const single = { options, correct: ["b"] };
const multi = { options, correct: ["a", "b", "c"], multiple: true, scoring: "partial" };

describe("choice grader: single choice", () => {
  it("gives full points for the right option", async () => {
    const r = await grade(choiceGrader, single, { selected: ["b"] });
    expect(r).toMatchObject({ status: "graded", score: 10, maxScore: 10 });
    expect(r.feedback.tests).toEqual([expect.objectContaining({ name: "Answer", status: "passed", score: 10 })]);
  });

  it("gives 0 for a wrong option or none", async () => {
    expect(await grade(choiceGrader, single, { selected: ["a"] })).toMatchObject({ status: "graded", score: 0 });
    const none = await grade(choiceGrader, single, { selected: [] });
    expect(none).toMatchObject({ status: "graded", score: 0 });
    expect(none.feedback.summary).toMatch(/No option selected/);
  });

  it("rejects several picks and unknown ids with a clear message", async () => {
    const two = await grade(choiceGrader, single, { selected: ["a", "b"] });
    expect(two.status).toBe("rejected");
    expect(two.feedback.summary).toMatch(/exactly one option/);
    const unknown = await grade(choiceGrader, single, { selected: ["z"] });
    expect(unknown.status).toBe("rejected");
    expect(unknown.feedback.summary).toMatch(/Unknown option id\(s\): z\. Valid ids: a, b, c, d/);
  });

  it("rejects a malformed answer instead of throwing", async () => {
    const r = await grade(choiceGrader, single, { picked: ["b"] });
    expect(r.status).toBe("rejected");
    expect(r.feedback.summary).toMatch(/Invalid answer/);
  });

  it("accepts numeric ids from YAML", async () => {
    const config = {
      options: [
        { id: 1, text: "x" },
        { id: 2, text: "y" },
      ],
      correct: [2],
    };
    expect((await grade(choiceGrader, config, { selected: ["2"] })).score).toBe(10);
    expect((await grade(choiceGrader, config, { selected: [2] })).score).toBe(10);
  });
});

describe("choice grader: multiple choice", () => {
  it("scores partial credit as (right - wrong) / correct, floored at 0", async () => {
    const cases: [string[], number][] = [
      [["a", "b", "c"], 10],
      [["a", "b"], 6.666667],
      [["a", "b", "d"], 3.333333],
      [["a", "d"], 0],
      [["d"], 0],
      [["b", "b"], 3.333333], // duplicates count once
    ];
    for (const [selected, score] of cases) {
      const r = await grade(choiceGrader, multi, { selected });
      expect(r.status).toBe("graded");
      expect(r.score).toBe(score);
    }
    const partial = await grade(choiceGrader, multi, { selected: ["a", "b", "d"] });
    expect(partial.feedback.tests[0]).toMatchObject({ status: "partial" });
    expect(partial.feedback.summary).toBe("2 of 3 correct options selected; 1 incorrect option(s) selected.");
  });

  it("balanced: right / correct − wrong / incorrect, floored at 0, so selecting everything earns 0", async () => {
    // 8 options, 6 correct (P1's proportions): under "partial" selecting all would earn (6 − 2) / 6.
    const eight = Array.from({ length: 8 }, (_, i) => ({ id: `o${i}`, text: `option ${i}` }));
    const config = { options: eight, correct: ["o0", "o1", "o2", "o3", "o4", "o5"], multiple: true, scoring: "balanced" };
    const cases: [string[], number][] = [
      [["o0", "o1", "o2", "o3", "o4", "o5"], 10],
      [["o0", "o1", "o2"], 5],
      [["o0", "o1", "o2", "o3", "o4", "o5", "o6"], 5], // one of two wrong options costs half
      [["o0", "o1", "o2", "o6"], 0],
      [eight.map((o) => o.id), 0],
      [["o6", "o7"], 0],
      [[], 0],
    ];
    for (const [selected, score] of cases) expect((await grade(choiceGrader, config, { selected })).score, selected.join()).toBe(score);
    expect((await grade(choiceGrader, { ...config, scoring: "partial" }, { selected: eight.map((o) => o.id) })).score).toBe(6.666667);
  });

  it("balanced: with every option correct there is nothing to cancel", async () => {
    const config = { options: options.slice(0, 2), correct: ["a", "b"], multiple: true, scoring: "balanced" };
    expect((await grade(choiceGrader, config, { selected: ["a"] })).score).toBe(5);
    expect((await grade(choiceGrader, config, { selected: ["a", "b"] })).score).toBe(10);
  });

  it("balanced on a single-choice problem is all-or-nothing", async () => {
    const config = { ...single, scoring: "balanced" };
    expect((await grade(choiceGrader, config, { selected: ["b"] })).score).toBe(10);
    expect((await grade(choiceGrader, config, { selected: ["a"] })).score).toBe(0);
  });

  it("is all-or-nothing by default", async () => {
    const config = { ...multi, scoring: undefined };
    expect((await grade(choiceGrader, config, { selected: ["a", "b"] })).score).toBe(0);
    expect((await grade(choiceGrader, config, { selected: ["c", "b", "a"] })).score).toBe(10);
  });

  it("allows several picks", async () => {
    expect((await grade(choiceGrader, multi, { selected: ["a", "b", "c"] })).status).toBe("graded");
  });
});

describe("choice grader: config and answer format", () => {
  it("reports config mistakes", () => {
    expect(configErrors(choiceGrader, { options, correct: ["a", "b"] }).join()).toMatch(/exactly one correct/);
    expect(configErrors(choiceGrader, { options, correct: ["x"] }).join()).toMatch(/correct: not option ids: x/);
    expect(configErrors(choiceGrader, { options: [...options, { id: "a", text: "again" }], correct: ["a"] }).join()).toMatch(
      /duplicate option ids: a/,
    );
    expect(configErrors(choiceGrader, { options, correct: ["a"], scoring: "half" }).join()).toMatch(/scoring/);
    expect(configErrors(choiceGrader, { options, correct: ["a"], multiple: true, corect: ["a"] }).join()).toMatch(/corect/);
    expect(configErrors(choiceGrader, { options, correct: [] }).join()).toMatch(/correct/);
  });

  it("shows options and multiple, never the correct ids", () => {
    const format = choiceGrader.answerFormat(choiceGrader.configSchema.parse(multi), "s");
    expect(format).toEqual({ options, multiple: true });
    expect(JSON.stringify(format)).not.toMatch(/correct/);
  });

  it("shuffles per student when asked, deterministically", () => {
    const config = choiceGrader.configSchema.parse({ ...single, shuffle: true });
    const orders = ["s1", "s2", "s3", "s4", "s5"].map((s) =>
      (choiceGrader.answerFormat(config, s).options as { id: string }[]).map((o) => o.id).join(""),
    );
    expect(new Set(orders).size).toBeGreaterThan(1);
    expect(choiceGrader.answerFormat(config, "s1")).toEqual(choiceGrader.answerFormat(config, "s1"));
    for (const o of orders) expect([...o].sort().join("")).toBe("abcd");
  });
});
