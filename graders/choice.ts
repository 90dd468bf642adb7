import { z } from "zod";
import { rng } from "./random.ts";
import { graded, prepare, rejected, test } from "./result.ts";
import type { Grader } from "./types.ts";

// YAML turns `id: 1` into a number; ids are compared as strings either way.
const id = z.union([z.string().min(1), z.number()]).transform(String);

export const choiceConfigSchema = z
  .strictObject({
    options: z.array(z.strictObject({ id, text: z.string().min(1) })).min(2),
    correct: z.array(id).min(1),
    multiple: z.boolean().default(false),
    /**
     * Multiple choice only. partial: (right − wrong) / |correct|. balanced: right / |correct| −
     * wrong / |incorrect|, so each wrong pick cancels a right one in proportion and selecting every
     * option earns 0. Both floored at 0.
     */
    scoring: z.enum(["all-or-nothing", "partial", "balanced"]).default("all-or-nothing"),
    /** Show the options in a per-student order (ids stay the same). */
    shuffle: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    const ids = c.options.map((o) => o.id);
    const dup = ids.filter((x, i) => ids.indexOf(x) !== i);
    if (dup.length) ctx.addIssue({ code: "custom", path: ["options"], message: `duplicate option ids: ${[...new Set(dup)].join(", ")}` });
    const unknown = c.correct.filter((x) => !ids.includes(x));
    if (unknown.length) ctx.addIssue({ code: "custom", path: ["correct"], message: `not option ids: ${unknown.join(", ")}` });
    if (new Set(c.correct).size !== c.correct.length) ctx.addIssue({ code: "custom", path: ["correct"], message: "lists an id twice" });
    if (!c.multiple && c.correct.length !== 1) {
      ctx.addIssue({
        code: "custom",
        path: ["correct"],
        message: "a single-choice problem (multiple: false) needs exactly one correct id",
      });
    }
  });
export type ChoiceConfig = z.output<typeof choiceConfigSchema>;

/** The share of the points for `right` correct and `wrong` incorrect picks (multiple choice, partial or balanced). */
function creditFraction(config: ChoiceConfig, right: number, wrong: number): number {
  const nCorrect = config.correct.length;
  if (config.scoring === "partial") return Math.max(0, right - wrong) / nCorrect;
  // With no incorrect option there is nothing to cancel (and no 0/0).
  const nIncorrect = config.options.length - nCorrect;
  return Math.max(0, right / nCorrect - (nIncorrect === 0 ? 0 : wrong / nIncorrect));
}

export const choiceAnswerSchema = z.strictObject({ selected: z.array(id).max(1000) });
export type ChoiceAnswer = z.output<typeof choiceAnswerSchema>;

export const choiceGrader: Grader<ChoiceConfig, ChoiceAnswer> = {
  type: "choice",
  version: "1.1.0",
  configSchema: choiceConfigSchema,
  answerSchema: choiceAnswerSchema,

  answerFormat(config, seed) {
    const options = config.options.map(({ id, text }) => ({ id, text }));
    return { options: config.shuffle ? rng(seed, "choice/order").shuffle(options) : options, multiple: config.multiple };
  },

  grade(input) {
    const prepared = prepare(choiceGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config, answer } = prepared;
    const { points } = input;
    const ids = config.options.map((o) => o.id);
    const selected = [...new Set(answer.selected)];

    const unknown = selected.filter((x) => !ids.includes(x));
    if (unknown.length) {
      return rejected(points, `Unknown option id(s): ${unknown.join(", ")}. Valid ids: ${ids.join(", ")}.`);
    }
    if (!config.multiple && selected.length > 1) {
      return rejected(points, `Select exactly one option; you selected ${selected.length} (${selected.join(", ")}).`);
    }

    const right = selected.filter((x) => config.correct.includes(x)).length;
    const wrong = selected.length - right;
    const exact = wrong === 0 && right === config.correct.length;
    let score: number;
    let message: string;
    if (selected.length === 0) {
      score = 0;
      message = "No option selected.";
    } else if (config.scoring !== "all-or-nothing" && config.multiple) {
      score = creditFraction(config, right, wrong) * points;
      message = exact
        ? "Correct."
        : `${right} of ${config.correct.length} correct options selected; ${wrong} incorrect option(s) selected.`;
    } else {
      score = exact ? points : 0;
      message = exact ? "Correct." : "Incorrect.";
    }
    const t = test("Answer", score, points, message);
    return graded(points, score, message, [t]);
  },
};
