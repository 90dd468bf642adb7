import winkNLP, { type WinkMethods } from "wink-nlp";
import model from "wink-eng-lite-web-model";

/**
 * The review queue's grouping rule (README, "Review queue"). A text answer becomes the set of its content
 * lemmas (wink-nlp, as the text grader reads answers: case, punctuation, word order, stop words and
 * inflections drop out, so "Decreases the loss." and "the loss decreases" are one answer), plus its
 * numbers in one canonical form ("1,000.50" = "1000.5", "two" = "2") and its count of negations. Two
 * answers are near-identical when their numbers and negations agree and their lemma sets overlap by at
 * least JACCARD_MIN (|A ∩ B| / |A ∪ B|): a spelling variant or one extra word in a long answer, never a
 * "not" or a different number, which change what an answer says. Other answers group by canonical JSON
 * (key order and whitespace do not matter), models by their sha256.
 */

export const JACCARD_MIN = 0.8;

let nlp: WinkMethods | undefined;
const wink = (): WinkMethods => (nlp ??= winkNLP(model, ["sbd", "pos"]));

const NEGATIONS = new Set(["not", "no", "never", "none", "neither", "nor", "cannot", "nothing", "nobody", "nowhere", "without"]);
const NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"];
/** wink's tokeniser is slow on very long runs without spaces; no meaningful word is this long. */
const LONG_RUN = /\S{100,}/g;
const SKIPPED_TYPES = new Set(["punctuation", "symbol", "emoji", "emoticon", "tabCRLF"]);

export interface Normalised {
  /** Equal keys: the same answer once normalised. */
  key: string;
  words: Set<string>;
  /** Numbers and negations, which must agree exactly for two answers to merge. */
  strict: string;
}

/** "1,000" → "1000", "0.50" → "0.5", ".5" → "0.5"; not a number: null. */
function canonicalNumber(s: string): string | null {
  const t = s.replace(/,/g, "");
  if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?%?$/i.test(t)) return null;
  const pct = t.endsWith("%");
  const n = Number(pct ? t.slice(0, -1) : t);
  return Number.isFinite(n) ? `${n}${pct ? "%" : ""}` : null;
}

export function normaliseText(raw: string): Normalised {
  const text = raw.normalize("NFKC").toLowerCase().replace(LONG_RUN, " ");
  const w = wink();
  const tokens = w.readDoc(text).tokens();
  const its = w.its;
  const types = tokens.out(its.type);
  const normals = tokens.out(its.normal);
  const lemmas = tokens.out(its.lemma as never) as string[]; // wink's typings give lemma the wrong arity
  const stops = tokens.out(its.stopWordFlag);
  const words = new Set<string>();
  const numbers: string[] = [];
  let negations = 0;
  normals.forEach((normal, i) => {
    if (SKIPPED_TYPES.has(types[i]!)) return;
    const num = canonicalNumber(normal) ?? (NUMBER_WORDS.includes(normal) ? String(NUMBER_WORDS.indexOf(normal)) : null);
    if (num !== null) numbers.push(num);
    else if (NEGATIONS.has(normal)) negations++;
    else if (!stops[i] && /[\p{L}\p{N}]/u.test(normal)) words.add(lemmas[i] || normal);
  });
  const strict = `${negations}|${numbers.sort().join(",")}`;
  return { key: `${strict}|${[...words].sort().join(" ")}`, words, strict };
}

/** JSON with sorted keys: the same value written in any key order or spacing is one string. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

/** How an answer is compared: text by its normal form, a model by its hash, anything else by its canonical JSON. */
export function answerKey(answer: unknown, modelSha256: string | null): Normalised {
  if (modelSha256) return { key: `model:${modelSha256}`, words: new Set(), strict: `model:${modelSha256}` };
  const text = (answer as { text?: unknown } | null)?.text;
  if (typeof text === "string") return normaliseText(text);
  const json = `json:${canonicalJson(answer)}`;
  return { key: json, words: new Set(), strict: json };
}

function jaccard(a: Set<string>, b: Set<string>): number {
  if (!a.size && !b.size) return 1;
  let both = 0;
  for (const x of a) if (b.has(x)) both++;
  return both / (a.size + b.size - both);
}

/**
 * Groups items (in submission order) by answer: first exact normal forms, then each of those (largest first, so
 * the most common phrasing leads) joins the first group whose leading form it is near-identical to, or starts its own.
 * Comparing with the leading form, not any member, keeps chains of small differences from drifting apart.
 */
export function groupAnswers<T>(items: { item: T; answer: Normalised }[], threshold = JACCARD_MIN): T[][] {
  const exact = new Map<string, { answer: Normalised; items: T[] }>();
  for (const { item, answer } of items) {
    const bucket = exact.get(answer.key) ?? { answer, items: [] };
    bucket.items.push(item);
    exact.set(answer.key, bucket);
  }
  // Stable: of equally common phrasings, the one seen first (the earliest submitted) leads.
  const buckets = [...exact.values()].sort((a, b) => b.items.length - a.items.length);
  const groups: { lead: Normalised; items: T[] }[] = [];
  for (const b of buckets) {
    const into = groups.find(
      (g) => g.lead.strict === b.answer.strict && g.lead.words.size > 0 && jaccard(g.lead.words, b.answer.words) >= threshold,
    );
    if (into) into.items.push(...b.items);
    else groups.push({ lead: b.answer, items: [...b.items] });
  }
  return groups.map((g) => g.items);
}
