import { RE2JS } from "re2js";
import { phraseWords, type Clause, type PhraseWord, type Token } from "./nlp.ts";

/**
 * Where a rubric entry (a phrase or a /regex/) is asserted in an answer's clauses, and how sure
 * the match is. Phrases match on lemmas in any order within one clause; regexes run on re2js, a
 * linear-time engine, so no instructor pattern can stall a worker on a hostile answer.
 */

const REGEX = /^\/(.+)\/([a-z]*)$/s;
const FLAGS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, u: 0 };
/** A regex may match many times; past this many matches in one answer the rest add nothing. */
const MAX_REGEX_MATCHES = 200;
/** Matched words further apart than this (clause positions) may not be one idea. */
const FAR_APART = 8;
/** Places of one word looked at per clause: keeps a clause that repeats a word 10 000 times linear. */
const MAX_PLACES = 50;

export type Entry = { source: string; words: PhraseWord[] } | { source: string; regex: RE2JS };

/** The entry ready to match, or why it cannot be used (named by the caller's config path). */
export function compileEntry(source: string): Entry | string {
  const m = REGEX.exec(source);
  if (!m) {
    const words = phraseWords(source);
    return words.some((w) => !w.negation) ? { source, words } : `"${source}" has no words to match`;
  }
  const flags = m[2]!;
  if ([...flags].some((f) => !(f in FLAGS))) return `${source}: only the flags i, m, s and u are allowed`;
  try {
    return {
      source,
      regex: RE2JS.compile(
        m[1]!,
        [...flags].reduce((acc, f) => acc | FLAGS[f]!, 0),
      ),
    };
  } catch (err) {
    return `${source}: the linear-time regex engine (RE2) cannot compile it (${(err as Error).message}); backreferences and lookaround are not supported`;
  }
}

export interface Synonym {
  from: { words: PhraseWord[]; surfaces?: string[] };
  to: PhraseWord[];
}

/** `synonyms: {D: discriminator}`: a key with a capital letter matches only as written ("D", not "d"). */
export function compileSynonym(from: string, to: string): Synonym | string {
  const fromWords = phraseWords(from);
  const toWords = phraseWords(to);
  if (!fromWords.length || !toWords.length) return `"${from}: ${to}" has no words to match`;
  const surfaces = /\p{Lu}/u.test(from) ? from.split(/[\s-]+/).filter(Boolean) : undefined;
  if (surfaces && surfaces.length !== fromWords.length) return `"${from}": write a case-sensitive key as plain words`;
  return { from: { words: fromWords, surfaces }, to: toWords };
}

/** Adds, where a synonym's key occurs in a clause, virtual words for what it stands for. */
export function applySynonyms(clause: Clause, synonyms: Synonym[]): Clause {
  const real = clause.tokens.filter((t) => !t.virtual);
  const extra: Token[] = [];
  for (const { from, to } of synonyms) {
    for (let i = 0; i + from.words.length <= real.length; i++) {
      const hit = from.words.every((w, k) => {
        const t = real[i + k]!;
        return from.surfaces ? t.surface === from.surfaces[k] : overlaps(w.keys, t.keys);
      });
      if (!hit) continue;
      const [first, last] = [real[i]!, real[i + from.words.length - 1]!];
      for (const w of to) {
        extra.push({ ...first, end: last.end, keys: w.keys, negation: false, stop: false, virtual: "synonym" });
      }
    }
  }
  return extra.length ? { ...clause, tokens: [...clause.tokens, ...extra] } : clause;
}

export interface Hit {
  clause: number;
  /** Negations governing the words beyond those the entry itself contains ("not converge"). */
  negated: boolean;
  /** Why the reading is uncertain (double negation…); undefined when it is not. */
  unclear?: string;
  confidence: number;
  why: string;
  start: number;
  end: number;
}

const overlaps = (a: Set<string>, b: Set<string>) => {
  for (const k of a) if (b.has(k)) return true;
  return false;
};

/** Every clause where the entry occurs, asserted or negated. */
export function findEntry(entry: Entry, clauses: Clause[], raw: string): Hit[] {
  if ("regex" in entry) return findRegex(entry.regex, clauses, raw);
  const hits: Hit[] = [];
  clauses.forEach((clause, ci) => {
    const hit = findPhrase(entry.words, clause, ci);
    if (hit) hits.push(hit);
  });
  return hits;
}

function findPhrase(words: PhraseWord[], clause: Clause, ci: number): Hit | undefined {
  const candidates = words.map((w) =>
    clause.tokens.filter((t) => (w.negation ? t.negation : !t.negation && overlaps(w.keys, t.keys))).slice(0, MAX_PLACES),
  );
  if (candidates.some((c) => c.length === 0)) return undefined;
  // The tightest choice: for each place of the first word, the nearest place of every other word.
  let best: Token[] | undefined;
  let bestSpan = Infinity;
  for (const anchor of candidates[0]!) {
    const chosen = [anchor];
    for (const c of candidates.slice(1)) {
      const free = c.filter((t) => !chosen.includes(t));
      if (!free.length) break;
      chosen.push(free.reduce((a, b) => (Math.abs(b.index - anchor.index) < Math.abs(a.index - anchor.index) ? b : a)));
    }
    if (chosen.length < words.length) continue;
    const span = Math.max(...chosen.map((t) => t.index)) - Math.min(...chosen.map((t) => t.index));
    if (span < bestSpan) [best, bestSpan] = [chosen, span];
  }
  if (!best) return undefined;
  const inOrder = best.every((t, k) => k === 0 || t.index >= best[k - 1]!.index);
  const gaps = clause.tokens.filter((t) => !t.virtual && !t.stop && t.index > best[0]!.index && t.index < best.at(-1)!.index);
  const contiguous = inOrder && gaps.every((t) => best.includes(t));
  const synonym = best.some((t) => t.virtual === "synonym");
  const why = synonym ? "via a declared synonym" : !inOrder ? "words in another order" : !contiguous ? "words apart" : "exact";
  return judge(best, words.filter((w) => w.negation).length, clause, ci, bestSpan, why === "exact" ? 1 : 0.7, why);
}

function findRegex(regex: RE2JS, clauses: Clause[], raw: string): Hit[] {
  // Every real word in text order, with its clause: each match finds its words by binary search.
  const words = clauses.flatMap((clause, ci) => clause.tokens.filter((t) => !t.virtual).map((t) => ({ t, ci })));
  const hits: Hit[] = [];
  const m = regex.matcher(raw);
  for (let n = 0; n < MAX_REGEX_MATCHES && m.find(); n++) {
    const [start, end] = [m.start(), Math.max(m.end(), m.start() + 1)];
    let lo = 0;
    for (let hi = words.length; lo < hi;) {
      const mid = (lo + hi) >> 1;
      if (words[mid]!.t.end <= start) lo = mid + 1;
      else hi = mid;
    }
    const first = words[lo];
    if (!first || first.t.start >= end) continue;
    const covered: Token[] = [];
    for (let k = lo; k < words.length && words[k]!.t.start < end && words[k]!.ci === first.ci; k++) covered.push(words[k]!.t);
    const own = covered.filter((t) => t.negation).length;
    const content = covered.filter((t) => !t.negation);
    const span = covered.at(-1)!.index - covered[0]!.index;
    hits.push(judge(content.length ? content : covered, own, clauses[first.ci]!, first.ci, span, 0.7, "regular expression"));
  }
  return hits;
}

function judge(words: Token[], ownNegations: number, clause: Clause, ci: number, span: number, base: number, why: string): Hit {
  const scope = Math.max(0, ...words.filter((t) => !t.negation).map((t) => t.scope));
  const beyond = scope - ownNegations;
  const position = { clause: ci, start: Math.min(...words.map((t) => t.start)), end: Math.max(...words.map((t) => t.end)) };
  if (scope >= 2) {
    // "It is not true that it doesn't converge": counting is a guess; a person should read it.
    return { ...position, negated: beyond > 0, unclear: "several negations in one clause", confidence: 0.3, why };
  }
  if (clause.unclear && beyond <= 0) return { ...position, negated: false, unclear: clause.unclear, confidence: 0.3, why };
  if (beyond < 0) return { ...position, negated: true, unclear: "the negation it needs is outside its clause", confidence: 0.3, why };
  if (span > FAR_APART) return { ...position, negated: beyond > 0, confidence: 0.4, why: `${why}, words far apart` };
  return { ...position, negated: beyond > 0, confidence: base, why };
}
