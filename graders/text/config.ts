import { LRUCache } from "lru-cache";
import { z } from "zod";
import { compileEntry, compileSynonym, type Entry, type Synonym } from "./match.ts";

/**
 * Compiled entries by source: configs are re-parsed per grade, the phrases they name rarely change. Bounded by
 * count and by source length (a compiled entry is of the order of its source), as uploaded sources may be long.
 */
const compiled = new LRUCache<string, Entry | string>({ max: 5000, maxSize: 4_000_000, sizeCalculation: (_v, k) => 64 + k.length });

function entry(source: string): Entry | string {
  let e = compiled.get(source);
  if (e === undefined) {
    e = compileEntry(source);
    compiled.set(source, e);
  }
  return e;
}

const accept = z
  .array(z.string().min(1))
  .min(1)
  .superRefine((list, ctx) => {
    list.forEach((source, i) => {
      const e = entry(source);
      if (typeof e === "string") ctx.addIssue({ code: "custom", path: [i], message: e });
    });
  });

const conceptSchema = z.strictObject({
  id: z.string().min(1),
  /** Staff-facing (and, with revealAfterDue, students' after the assignment closed). */
  description: z.string().min(1),
  points: z.number().positive(),
  accept,
  /** Student-facing nudge shown when the concept is missed: never the answer. */
  hint: z.string().min(1).optional(),
});

const misconceptionSchema = z
  .strictObject({
    id: z.string().min(1),
    description: z.string().min(1),
    accept,
    /** Rubric points taken off when the answer asserts it. */
    penalty: z.number().positive().optional(),
    /** Rubric points the answer can earn at most when it asserts it. */
    cap: z.number().min(0).optional(),
    hint: z.string().min(1).optional(),
  })
  .refine((m) => m.penalty !== undefined || m.cap !== undefined, { message: "give a penalty, a cap or both" });

const exampleSchema = z.strictObject({
  text: z.string().min(1).max(100_000),
  /** The score (in the problem's points) a careful TA gives this answer. */
  score: z.number().min(0),
  note: z.string().optional(),
});

export const textConfigSchema = z
  .strictObject({
    rubric: z.array(conceptSchema).min(1),
    misconceptions: z.array(misconceptionSchema).default([]),
    /** Words or phrases that stand for others in this problem: `{D: discriminator, "mode dropping": mode collapse}`. */
    synonyms: z.record(z.string().min(1), z.union([z.string().min(1), z.array(z.string().min(1)).min(1)])).default({}),
    /** Rubric points that earn full marks; defaults to the sum of the concepts' points. */
    maxScore: z.number().positive().optional(),
    minWords: z.number().int().min(0).optional(),
    maxLength: z.number().int().positive().default(5000),
    /** Flag for review a substantive answer scoring below this fraction of full marks. */
    reviewBelow: z.number().min(0).max(1).optional(),
    /** Fraction of the score a bare list of terms (no sentence with a verb) earns. */
    listCredit: z.number().min(0).max(1).default(1),
    /** After the assignment closed, students see each concept's description. */
    revealAfterDue: z.boolean().default(false),
    /** Sample answers with the score they deserve; the catalog refuses a rubric that misgrades one. */
    examples: z.array(exampleSchema).default([]),
    /** How far (in the problem's points) a graded example may be from its declared score. */
    exampleTolerance: z.number().min(0).default(0.5),
  })
  .superRefine((c, ctx) => {
    const ids = [...c.rubric, ...c.misconceptions].map((r) => r.id);
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
    for (const [from, to] of Object.entries(c.synonyms)) {
      for (const target of [to].flat()) {
        const s = synonym(from, target);
        if (typeof s === "string") ctx.addIssue({ code: "custom", path: ["synonyms", from], message: s });
      }
    }
  });
export type TextConfig = z.output<typeof textConfigSchema>;

const compiledSynonyms = new LRUCache<string, Synonym | string>({
  max: 5000,
  maxSize: 4_000_000,
  sizeCalculation: (_v, k) => 64 + k.length,
});
function synonym(from: string, to: string): Synonym | string {
  const key = `${from}\u0000${to}`;
  let s = compiledSynonyms.get(key);
  if (s === undefined) {
    s = compileSynonym(from, to);
    compiledSynonyms.set(key, s);
  }
  return s;
}

/** The config's synonyms, compiled (the schema already refused any that do not compile). */
export const synonymsOf = (c: TextConfig): Synonym[] =>
  Object.entries(c.synonyms).flatMap(([from, to]) =>
    [to]
      .flat()
      .map((t) => synonym(from, t))
      .filter((s) => typeof s !== "string"),
  );

/** An entry the schema accepted. */
export const compiledEntry = (source: string): Entry => entry(source) as Entry;

export const textAnswerSchema = z.strictObject({ text: z.string().max(100_000) });
export type TextAnswer = z.output<typeof textAnswerSchema>;
