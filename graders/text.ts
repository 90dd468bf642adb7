import { graded, prepare, rejected, round6, test } from "./result.ts";
import { LOW_CONFIDENCE, read, snippet, type Outcome } from "./text/assess.ts";
import { synonymsOf, textAnswerSchema, textConfigSchema, type TextAnswer, type TextConfig } from "./text/config.ts";
import type { ConfigIssue, Grader, GradeResult, TestResult } from "./types.ts";

export { textAnswerSchema, textConfigSchema, type TextAnswer, type TextConfig };

/**
 * Short free-text answers scored against a rubric of concepts, read with wink-nlp (README,
 * "Text answers"). In problem.yaml:
 *
 *   grader:
 *     type: text
 *     synonyms: { D: discriminator }
 *     rubric:
 *       - id: capacity
 *         description: Names model capacity as a cause        # staff (and after the due date, if revealAfterDue)
 *         hint: What about the size of the model?             # students who missed it
 *         points: 1
 *         accept: ["too many parameters", "model capacity", "/over-?parameteri[sz]ed/i"]
 *     misconceptions:
 *       - { id: vae, description: Blames VAEs, accept: ["VAE problem"], cap: 0 }
 *     maxScore: 3        # e.g. "give three reasons": any 3 of the concepts earn full marks
 *     examples: [{ text: "…", score: 3 }]
 *
 * A phrase matches on lemmas in any order within one clause, and earns nothing when its clause
 * denies it; "/.../flags" is an RE2 regular expression (linear time) tried on the raw text.
 */

/** Answers at least this long (or minWords, if more) count as substantive for the review rule. */
const SUBSTANTIVE_WORDS = 15;
const countWords = (text: string) => text.split(/[^\p{L}\p{N}]+/u).filter(Boolean).length;

const MESSAGES: Record<Outcome["kind"], string> = {
  found: "Found in your answer.",
  negated: "Your answer states it only under a negation (e.g. “is not”), so it earns nothing.",
  unclear: "Your answer may deny it; it earns nothing until a reviewer reads it.",
  absent: "Not found in your answer.",
};

function gradeText(config: TextConfig, raw: string, points: number): GradeResult {
  const count = countWords(raw);
  if (count === 0) return rejected(points, "The answer is empty.");
  if (raw.length > config.maxLength) {
    return rejected(points, `The answer is ${raw.length} characters long; the limit is ${config.maxLength}.`);
  }
  if (config.minWords !== undefined && count < config.minWords) {
    return rejected(points, `The answer has ${count} word(s); write at least ${config.minWords}.`);
  }

  const { rubric, misconceptions } = config;
  const reading = read(raw, [...rubric, ...misconceptions], synonymsOf(config));
  const cap = config.maxScore ?? rubric.reduce((s, r) => s + r.points, 0);
  const scale = points / cap;
  const reasons: string[] = [];
  const evidence = (o: Outcome) => (o.kind === "absent" ? "" : ` — "${snippet(raw, reading.clauses[o.hit.clause]!)}"`);
  const key = (description: string) => (config.revealAfterDue ? { answerKey: description } : {});

  let earned = 0;
  // Students see neutral names, messages and hints: descriptions and phrasings would be the answer key.
  const tests: TestResult[] = rubric.map((concept, i) => {
    const o = reading.outcomes[i]!;
    const name = `Concept ${i + 1}`;
    const max = concept.points * scale;
    let staff = `${concept.id}: ${concept.description} — ${o.kind}`;
    if (o.kind === "found") {
      earned += concept.points;
      staff += ` (confidence ${o.confidence}, ${o.why})`;
      if (o.confidence < LOW_CONFIDENCE) reasons.push(`${name} (${concept.id}) found with low confidence (${o.why})${evidence(o)}`);
    }
    if (o.kind === "unclear") {
      staff += ` (${o.reason})`;
      reasons.push(`${name} (${concept.id}) not counted: ${o.reason}${evidence(o)}`);
    }
    const t = test(name, o.kind === "found" ? max : 0, max, MESSAGES[o.kind]);
    return {
      ...t,
      staffMessage: staff + evidence(o),
      ...(o.kind !== "found" && concept.hint ? { hint: concept.hint } : {}),
      ...key(concept.description),
    };
  });

  let rubricScore = Math.min(earned, cap);
  misconceptions.forEach((m, k) => {
    const o = reading.outcomes[rubric.length + k]!;
    if (o.kind !== "found") return;
    const costs = [
      m.penalty !== undefined ? `costs ${round6(m.penalty * scale)} point(s)` : "",
      m.cap !== undefined ? `caps the score at ${round6(m.cap * scale)}` : "",
    ].filter(Boolean);
    if (m.penalty !== undefined) rubricScore -= m.penalty;
    if (m.cap !== undefined) rubricScore = Math.min(rubricScore, m.cap);
    reasons.push(`misconception ${m.id} asserted${evidence(o)}`);
    tests.push({
      ...test(`Misconception ${k + 1}`, 0, 0, `Your answer states an idea that is wrong here; it ${costs.join(" and ")}.`),
      status: "failed",
      staffMessage: `${m.id}: ${m.description} (confidence ${o.confidence}, ${o.why})${evidence(o)}`,
      ...(m.hint ? { hint: m.hint } : {}),
      ...key(m.description),
    });
  });

  const factor = reading.list ? config.listCredit : 1;
  const score = (Math.max(0, rubricScore) / cap) * points * factor;
  const concepts = reading.outcomes.slice(0, rubric.length);
  const matched = concepts.filter((o) => o.kind === "found").length;

  // A substantive answer that earns little may be right in words the rubric did not foresee.
  const substantive = count >= Math.max(SUBSTANTIVE_WORDS, config.minWords ?? 0);
  if (substantive && concepts.every((o) => o.kind === "absent")) reasons.push("a substantive answer matched no concept");
  else if (substantive && config.reviewBelow !== undefined && score < config.reviewBelow * points) {
    reasons.push(`a substantive answer scored below ${config.reviewBelow} of full marks`);
  }

  const notes = [
    earned > cap ? ` (${round6(earned)} rubric points, counted up to ${round6(cap)})` : "",
    factor < 1 ? ` A list of terms without sentences earns ${round6(factor * 100)} % of the points; explain in sentences.` : "",
  ];
  const summary = `Found ${matched} of ${rubric.length} rubric concepts${notes[0]}.${notes[1]}`;
  const result = graded(points, score, summary, tests);
  return {
    ...result,
    feedback: { ...result.feedback, ...(reasons.length ? { reviewReasons: reasons } : {}) },
    needsReview: reasons.length > 0,
  };
}

export const textGrader: Grader<TextConfig, TextAnswer> = {
  type: "text",
  version: "2.0.0",
  configSchema: textConfigSchema,
  answerSchema: textAnswerSchema,

  answerFormat(config) {
    return { kind: "text", maxLength: config.maxLength, ...(config.minWords ? { minWords: config.minWords } : {}) };
  },

  selfCheck(config, { points }) {
    const issues: ConfigIssue[] = [];
    config.examples.forEach((example, i) => {
      const path = ["examples", i];
      const quote = snippet(example.text, { start: 0, end: example.text.length });
      if (example.score > points) {
        issues.push({ path, message: `example ${i} ("${quote}") declares ${example.score} points; the problem is worth ${points}` });
        return;
      }
      const r = gradeText(config, example.text, points);
      if (r.status !== "graded") {
        issues.push({ path, message: `example ${i} ("${quote}") is not gradable: ${r.feedback.summary}` });
      } else if (Math.abs(r.score - example.score) > config.exampleTolerance) {
        issues.push({
          path,
          message: `example ${i} ("${quote}") scores ${r.score} but declares ${example.score} (tolerance ${config.exampleTolerance}); fix the rubric or the example`,
        });
      }
    });
    return issues;
  },

  grade(input) {
    const prepared = prepare(textGrader, input);
    if (!prepared.ok) return prepared.result;
    return gradeText(prepared.config, prepared.answer.text, input.points);
  },
};
