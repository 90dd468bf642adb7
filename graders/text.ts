import { z } from "zod";
import { graded, prepare, rejected, round6, test } from "./result.ts";
import type { Grader } from "./types.ts";

/**
 * Short free-text answers scored against a rubric of concepts. In problem.yaml:
 *
 *   grader:
 *     type: text
 *     rubric:
 *       - id: capacity
 *         description: Names model capacity as a cause
 *         points: 1
 *         accept: ["too many parameters", "model capacity", "/over-?parameteri[sz]ed/i"]
 *     maxScore: 3        # e.g. "give three reasons": any 3 of the concepts earn full marks
 *     minWords: 10
 *
 * A phrase matches on normalised words (case, accents, punctuation and spacing ignored,
 * so "data-set" = "data set" = "dataset"; light stemming: plurals, -ing/-ed, British -ise
 * spellings); "/.../flags" is a regular expression tried on the raw text.
 */

const REGEX = /^\/(.+)\/([a-z]*)$/s;
const REGEX_FLAGS = /^[imsu]*$/;

/** The error for an accept entry, or undefined when it is usable. */
function acceptProblem(entry: string): string | undefined {
  const m = REGEX.exec(entry);
  if (!m) return normalise(entry).length === 0 ? `"${entry}" has no words to match` : undefined;
  if (!REGEX_FLAGS.test(m[2]!)) return `${entry}: only the flags i, m, s and u are allowed`;
  try {
    new RegExp(m[1]!, m[2]);
  } catch (err) {
    return `${entry}: invalid regular expression (${(err as Error).message})`;
  }
  return undefined;
}

const conceptSchema = z.strictObject({
  id: z.string().min(1),
  description: z.string().min(1),
  points: z.number().positive(),
  accept: z
    .array(z.string().min(1))
    .min(1)
    .superRefine((accept, ctx) => {
      accept.forEach((entry, i) => {
        const problem = acceptProblem(entry);
        if (problem) ctx.addIssue({ code: "custom", path: [i], message: problem });
      });
    }),
});

export const textConfigSchema = z
  .strictObject({
    rubric: z.array(conceptSchema).min(1),
    /** Rubric points that earn full marks; defaults to the sum of the concepts' points. */
    maxScore: z.number().positive().optional(),
    minWords: z.number().int().min(0).optional(),
    maxLength: z.number().int().positive().default(5000),
    /** Flag for review a substantive answer scoring below this fraction of full marks. */
    reviewBelow: z.number().min(0).max(1).optional(),
  })
  .superRefine((c, ctx) => {
    const ids = c.rubric.map((r) => r.id);
    const dup = ids.filter((x, i) => ids.indexOf(x) !== i);
    if (dup.length) ctx.addIssue({ code: "custom", path: ["rubric"], message: `duplicate concept ids: ${[...new Set(dup)].join(", ")}` });
    const total = c.rubric.reduce((s, r) => s + r.points, 0);
    if (c.maxScore !== undefined && c.maxScore > total) {
      ctx.addIssue({
        code: "custom",
        path: ["maxScore"],
        message: `is more than the rubric's ${total} points, so full marks are out of reach`,
      });
    }
  });
export type TextConfig = z.output<typeof textConfigSchema>;

export const textAnswerSchema = z.strictObject({ text: z.string().max(100_000) });
export type TextAnswer = z.output<typeof textAnswerSchema>;

/** Same stem for singular/plural, -ing/-ed forms and -ise/-ize spellings; applied to both sides, so it need only be consistent. */
export function stem(word: string): string {
  let w = word.replace(/isation$/, "ization").replace(/is(e|ed|es|ing|er|ers)$/, "iz$1");
  if (w.length <= 3) return w;
  if (w.endsWith("ies") && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith("s") && !/(ss|us|is|ias)$/.test(w)) w = w.slice(0, -1);
  const suffix = /(ing|ed)$/.exec(w);
  if (suffix && w.length - suffix[0].length >= 3) {
    w = w.slice(0, -suffix[0].length);
    // "overfitting" → "overfitt" → "overfit"; l, s and z doubles are usually part of the word.
    if (/([bcdfghjkmnprtvwxy])\1$/.test(w)) w = w.slice(0, -1);
  }
  if (w.length > 3 && w.endsWith("e") && !w.endsWith("ee")) w = w.slice(0, -1);
  return w;
}

/** Lower-case words without accents or punctuation ("Self-supervised!" → ["self", "supervised"]), unstemmed. */
function words(text: string): string[] {
  return text
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
}

export const normalise = (text: string): string[] => words(text).map(stem);

const NEGATIONS = new Set(["not", "no", "never", "without", "nor", "cannot", "t"]); // "t" from "isn't"
/** Words looked at before a match; wider windows catch the previous clause ("not enough data, no dropout"). */
const NEGATION_WINDOW = 2;

/**
 * Where `phrase` occurs in `tokens`: not at all, only right after a negation ("not
 * overfitting"), or plainly. Word boundaries inside the phrase are ignored, so
 * "data set", "data-set" and "dataset" all match each other.
 */
function findPhrase(tokens: string[], phrase: string[]): "absent" | "negated" | "present" {
  const target = phrase.join("");
  let found: "absent" | "negated" = "absent";
  for (let i = 0; i < tokens.length; i++) {
    let joined = "";
    for (let j = i; j < tokens.length && joined.length < target.length; j++) joined += tokens[j];
    if (joined !== target) continue;
    if (!tokens.slice(Math.max(0, i - NEGATION_WINDOW), i).some((t) => NEGATIONS.has(t))) return "present";
    found = "negated";
  }
  return found;
}

function matchConcept(accept: string[], raw: string, tokens: string[]): "absent" | "negated" | "present" {
  let best: "absent" | "negated" = "absent";
  for (const entry of accept) {
    const m = REGEX.exec(entry);
    const found = m ? (new RegExp(m[1]!, m[2]).test(raw) ? "present" : "absent") : findPhrase(tokens, normalise(entry));
    if (found === "present") return found;
    if (found === "negated") best = found;
  }
  return best;
}

/** Answers at least this long (or minWords, if more) count as substantive for the review rule. */
const SUBSTANTIVE_WORDS = 15;

export const textGrader: Grader<TextConfig, TextAnswer> = {
  type: "text",
  version: "1.0.0",
  configSchema: textConfigSchema,
  answerSchema: textAnswerSchema,

  answerFormat(config) {
    return { kind: "text", maxLength: config.maxLength, ...(config.minWords ? { minWords: config.minWords } : {}) };
  },

  grade(input) {
    const prepared = prepare(textGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config, answer } = prepared;
    const { points } = input;
    const raw = answer.text;
    const count = words(raw).length;
    if (count === 0) return rejected(points, "The answer is empty.");
    if (raw.length > config.maxLength) {
      return rejected(points, `The answer is ${raw.length} characters long; the limit is ${config.maxLength}.`);
    }
    if (config.minWords !== undefined && count < config.minWords) {
      return rejected(points, `The answer has ${count} word(s); write at least ${config.minWords}.`);
    }

    const tokens = normalise(raw);
    const cap = config.maxScore ?? config.rubric.reduce((s, r) => s + r.points, 0);
    const scale = points / cap;
    let earned = 0;
    let negated = false;
    // The messages never quote accepted phrasings: they would be the answer key.
    const tests = config.rubric.map((concept) => {
      const found = matchConcept(concept.accept, raw, tokens);
      negated ||= found === "negated";
      if (found === "present") earned += concept.points;
      const max = concept.points * scale;
      if (found === "present") return test(concept.description, max, max, "Found in your answer.");
      const message = found === "negated" ? "Mentioned only after a negation; a reviewer will check." : "Not found in your answer.";
      return test(concept.description, 0, max, message);
    });
    const score = (Math.min(earned, cap) / cap) * points;
    const matched = tests.filter((t) => t.status === "passed").length;

    /*
     * Review rule: keyword matching is trustworthy when it finds things and when the
     * answer is too short to hold much. Staff should look when
     *  - the answer is substantive (≥ max(15, minWords) words) and nothing matched,
     *  - or it is substantive and scores below reviewBelow × full marks,
     *  - or a concept was found only right after a negation ("it is not overfitting").
     */
    const substantive = count >= Math.max(SUBSTANTIVE_WORDS, config.minWords ?? 0);
    const low = matched === 0 || (config.reviewBelow !== undefined && score < config.reviewBelow * points);
    const needsReview = (substantive && low) || negated;

    const capped = earned > cap ? ` (${round6(earned)} rubric points, counted up to ${round6(cap)})` : "";
    const summary = `Found ${matched} of ${config.rubric.length} rubric concepts${capped}.`;
    return { ...graded(points, score, summary, tests), needsReview };
  },
};
