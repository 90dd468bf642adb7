import winkNLP, { type WinkMethods } from "wink-nlp";
import model from "wink-eng-lite-web-model";

/**
 * What the text grader reads of an answer: wink-nlp's tokens, lemmas, parts of speech and
 * sentences, cut into clauses that carry their own negation. wink's own negation flag marks a
 * fixed window after "not" and misses what comes before it ("initialisation doesn't matter"), so
 * the scope here is the clause, whatever the distance.
 */

/** Lazily: loading the model costs ~70 ms, once per process or worker thread. */
let nlp: WinkMethods | undefined;
const winkOf = (): WinkMethods => (nlp ??= winkNLP(model, ["sbd", "pos"]));
/** Loads the language model now (a grading worker's threads, at boot). */
export const preloadNlp = (): void => void winkOf();

export interface Token {
  /** Forms a phrase word may match: surface (lower case), lemma, hyphen-free and -ize spellings. */
  keys: Set<string>;
  surface: string;
  start: number;
  end: number;
  /** "not", "no", "never", "none"… (after wink expanded "isn't" into "is" + "n't"). */
  negation: boolean;
  stop: boolean;
  /** Inside a clause: how many negations govern this word (its segment's plus the clause's main part). */
  scope: number;
  /** Position in the clause; a virtual token shares the position of the word it stands on. */
  index: number;
  /** Added by a synonym or by joining two words ("hyper parameters" → "hyperparameters"). */
  virtual?: "synonym" | "joined";
}

export interface Clause {
  tokens: Token[];
  start: number;
  end: number;
  /** The clause or its sentence has a verb: a sentence, not a bare list of terms. */
  hasVerb: boolean;
  /**
   * A negation that may deny earlier clauses: "none of these…" anything before it in the answer;
   * a negated verb whose subject a parenthetical cut off ("X, as we saw, doesn't matter") its sentence.
   */
  deniesBack?: "answer" | "sentence";
  /** "this is not…", "they don't…": a negated clause whose subject is a pronoun. */
  anaphoricNegation: boolean;
  /** Why the clause's polarity is a guess; what it asserts then earns nothing and goes to review. */
  unclear?: string;
  sentence: number;
}

const NEGATIONS = new Set(["not", "no", "never", "none", "neither", "nor", "cannot", "nothing", "nobody", "nowhere"]);
/** "not only X but also Y" asserts X. */
const NOT_NEGATING_NEXT = new Set(["only", "just", "merely", "simply"]);
const QUANTIFIERS = new Set(["none", "neither", "nor"]);
const ANAPHORS = new Set(["this", "that", "these", "those", "it", "they", "them", "which"]);
const DEMONSTRATIVES = new Set(["these", "those", "them"]);
/** What a clause that denies an earlier one says: "this is not true", "they don't matter"… */
const DENIALS = new Set([
  "true",
  "matter",
  "happen",
  "apply",
  "occur",
  "hold",
  "case",
  "problem",
  "issue",
  "relevant",
  "correct",
  "right",
  "real",
]);
/** Words that start a new clause: coordinators and subordinators. */
const CLAUSE_WORDS = new Set([
  "and", "or", "but", "because", "since", "when", "whenever", "while", "whereas", "although", "though",
  "if", "unless", "so", "which", "where", "then", "otherwise", "hence", "thus", "therefore",
]); // prettier-ignore
/** After "and"/"or", what starts a new clause rather than another noun of a list. */
const CLAUSE_STARTS = new Set(["DET", "PRON", "VERB", "AUX", "ADV", "PART", "SCONJ"]);
/** Words after which the segment is about what is contrasted away ("unlike VAEs", "instead of NMS"). */
const CONTRAST = [["unlike"], ["instead", "of"], ["rather", "than"], ["as", "opposed", "to"], ["in", "contrast", "to"], ["not", "like"]];
const BOUNDARY_PUNCT = /^([,;:()[\]{}—–!?.…]|-{1,2}|\n+|\s*\n\s*)$/;

/** Words that carry no idea of their own: dropped from phrases and ignored between matched words. */
const FUNCTION_WORDS = new Set(["DET", "ADP", "PRON", "CCONJ", "SCONJ", "AUX", "PART", "PUNCT", "SYM", "SPACE"]);
/** Stop-listed adverbs that still carry meaning in a rubric phrase. */
const CONTENT_ADVERBS = /^(only|once|too|very|same|again|together|alone)$/;

const LONG_RUN = /\S{100,}/g;

/** British -ise spellings and their American -ize twins share one key. */
const izeForm = (w: string) => w.replace(/is(e|ed|es|ing|er|ers|ation|ations)$/, "iz$1");

function keysOf(normal: string, lemma: string): Set<string> {
  const keys = new Set([normal, lemma, izeForm(normal), izeForm(lemma)]);
  // Words wink does not know keep their plural as lemma ("hyperparameters", "GANs").
  if (lemma === normal && normal.length > 3 && /[^su]s$/.test(normal)) keys.add(normal.slice(0, -1));
  if (normal.includes("-")) keys.add(normal.replace(/-/g, ""));
  return keys;
}

interface RawToken extends Omit<Token, "scope" | "index"> {
  pos: string;
  sentence: number;
  boundary: boolean;
}

/** wink tokens with character offsets; contractions keep their surface ("n't") and normalise to "not". */
function tokenise(raw: string): RawToken[] {
  const its = winkOf().its;
  // wink's tokeniser is quadratic in a word's length (100k "a"s take seconds); no rubric word is
  // that long, so such runs are blanked to spaces of the same length (offsets stay true for regexes).
  const text = raw.replace(LONG_RUN, (run) => " ".repeat(run.length));
  const doc = winkOf().readDoc(text);
  const out: RawToken[] = [];
  let cursor = 0;
  doc.sentences().each((sentence, si) => {
    const tokens = sentence.tokens();
    const values = tokens.out(its.value);
    const normals = tokens.out(its.normal);
    const lemmas = tokens.out(its.lemma as never) as string[]; // wink's typings declare lemma with the wrong arity
    const pos = tokens.out(its.pos);
    const stops = tokens.out(its.stopWordFlag);
    const spaced = (at: number, len: number) => /\s/.test(raw[at - 1] ?? " ") || /\s/.test(raw[at + len] ?? " ");
    values.forEach((value, i) => {
      const at = text.indexOf(value, cursor);
      const start = at < 0 ? cursor : at;
      cursor = at < 0 ? cursor : at + value.length;
      const normal = normals[i]!;
      const tag = pos[i]!;
      const negation = NEGATIONS.has(normal) && !NOT_NEGATING_NEXT.has(normals[i + 1] ?? "");
      out.push({
        keys: keysOf(normal, lemmas[i]!),
        surface: value,
        start,
        end: start + value.length,
        negation,
        stop: FUNCTION_WORDS.has(tag) || (Boolean(stops[i]) && tag === "ADV" && !CONTENT_ADVERBS.test(normal)),
        pos: tag,
        sentence: si,
        // "hyper-parameter" is one word; "min-max - it oscillates" has a dash between clauses.
        boundary:
          tag === "SPACE"
            ? value.includes("\n")
            : tag === "PUNCT" && BOUNDARY_PUNCT.test(value) && (!/^[-–]$/.test(value) || spaced(start, value.length)),
      });
    });
  });
  return out;
}

/** A finite verb, not a participle used as an adjective ("bounding boxes", "predicted boxes"). */
function isVerb(tokens: RawToken[], i: number): boolean {
  const t = tokens[i]!;
  if (t.pos === "AUX") return true;
  if (t.pos !== "VERB") return false;
  if (/ing$/i.test(t.surface)) return false;
  return !(/ed$/i.test(t.surface) && ["NOUN", "PROPN", "ADJ"].includes(tokens[i + 1]?.pos ?? ""));
}

interface Segment {
  tokens: RawToken[];
  hasVerb: boolean;
  contrast: boolean;
  negations: number;
  /** Ended at ";", a line break or a sentence end: nothing after it belongs to its clause. */
  hardEnd: boolean;
  /** "but …" starts afresh; "which/where …" may still be under the previous clause's negation. */
  opener?: "fresh" | "relative";
  danglingAux: boolean;
}

const FRESH = new Set(["but", "yet", "however", "although", "though", "whereas", "while"]);
const RELATIVE = new Set(["which", "where", "who", "whom", "whose"]);

const HARD_BOUNDARY = /^([;.!?…]|\s*\n\s*)$/;

function contrastAt(tokens: RawToken[], i: number): number {
  for (const cue of CONTRAST) if (cue.every((w, k) => tokens[i + k]?.keys.has(w))) return cue.length;
  return 0;
}

/** Splits at punctuation, line breaks, clause words and contrast cues. */
function segments(tokens: RawToken[]): Segment[] {
  const out: Segment[] = [];
  let current: RawToken[] = [];
  let contrast = false;
  const close = (hardEnd = false) => {
    const words = current.filter((t) => !t.boundary && t.pos !== "SPACE" && t.pos !== "PUNCT");
    if (words.length) {
      const first = words[0]!.surface.toLowerCase();
      out.push({
        tokens: words,
        hasVerb: current.some((_, i) => isVerb(current, i)),
        contrast,
        negations: words.filter((t) => t.negation).length,
        hardEnd,
        opener: FRESH.has(first) ? "fresh" : RELATIVE.has(first) ? "relative" : undefined,
        danglingAux: words.at(-1)!.pos === "AUX",
      });
    } else if (hardEnd && out.length) out.at(-1)!.hardEnd = true;
    current = [];
    contrast = false;
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (i > 0 && t.sentence !== tokens[i - 1]!.sentence) close(true);
    if (t.boundary) {
      close(HARD_BOUNDARY.test(t.surface));
      continue;
    }
    const cue = contrastAt(tokens, i);
    if (cue) {
      close();
      contrast = true;
      current.push(...tokens.slice(i, i + cue));
      i += cue - 1;
      continue;
    }
    const word = t.surface.toLowerCase();
    // "G and D play…", "grid and boxes" join nouns; "and the gradients vanish", "and suffers…" start a clause.
    const joinsNouns = (word === "and" || word === "or") && !CLAUSE_STARTS.has(tokens[i + 1]?.pos ?? "");
    if (CLAUSE_WORDS.has(word) && !joinsNouns && current.length) close();
    current.push(t);
  }
  close();
  return out;
}

interface Parts {
  segs: Segment[];
  /** How many leading segments form the main part (the rest are attached lists). */
  main: number;
  /** The main part ends in "is," / "does,": what follows up to the sentence's end completes it. */
  absorbing: boolean;
  /** A relative clause ("…, where D is too strong") after a negated clause: the negation may reach it. */
  afterNegation: boolean;
  /** A negated verb without a subject of its own and nothing before it to take as one. */
  orphanNegation?: boolean;
}

/**
 * Clauses: a segment with a verb, with the verbless segments before it in its main part when they
 * are its subject ("none of these problems, …, affect GANs") and the verbless ones after it (a
 * list: "does not use a grid, boxes or NMS") attached. A main-part negation governs the attached lists; a list's own
 * negation ("problems of VAEs, not of GANs") or contrast cue governs only that list, and a list
 * opened by "but" ("not X but Y") is not governed by what precedes it.
 */
function clausesOf(segs: Segment[]): Parts[] {
  const out: Parts[] = [];
  let pending: Segment[] = [];
  let open: Parts | undefined;
  // Verbless segments left without a verb before a hard boundary are list items, each its own clause.
  const flush = () => {
    for (const seg of pending) out.push({ segs: [seg], main: 1, absorbing: false, afterNegation: false });
    pending = [];
    open = undefined;
  };
  for (const seg of segs) {
    if (open?.absorbing && !seg.contrast) {
      open.segs.push(seg);
      open.main = open.segs.length;
    } else if (seg.hasVerb) {
      const negated = open !== undefined && open.segs.slice(0, open.main).some((s) => s.negations > 0);
      // "…, doesn't matter" has no subject of its own: the verbless segments before it are its
      // subject. Otherwise they are list items ("Unstable training, mode collapse, no metric to …").
      const subjectless = ["AUX", "VERB"].includes(seg.tokens[0]!.pos);
      if (!subjectless) for (const p of pending) out.push({ segs: [p], main: 1, absorbing: false, afterNegation: false });
      const lead = subjectless ? pending : [];
      open = {
        segs: [...lead, seg],
        main: lead.length + 1,
        absorbing: seg.danglingAux,
        afterNegation: negated && seg.opener === "relative",
        orphanNegation: subjectless && !lead.length && seg.negations > 0,
      };
      pending = [];
      out.push(open);
    } else if (open && !seg.contrast && seg.opener !== "fresh") open.segs.push(seg);
    else pending.push(seg);
    if (seg.hardEnd) flush();
  }
  flush();
  return out;
}

export function analyse(raw: string): Clause[] {
  const tokens = tokenise(raw);
  const sentenceHasVerb = new Set(tokens.filter((t, i) => isVerb(tokens, i)).map((t) => t.sentence));
  return clausesOf(segments(tokens)).map(({ segs, main: mainCount, afterNegation, orphanNegation }) => {
    const verbal = segs.some((s) => s.hasVerb);
    const main = segs.slice(0, mainCount).filter((s) => !s.contrast);
    const negations = verbal ? main.reduce((n, s) => n + s.negations, 0) : 0;
    const out: Token[] = [];
    segs.forEach((seg, k) => {
      const inMain = verbal && k < mainCount && !seg.contrast;
      const scope = inMain ? negations : negations + seg.negations + Number(seg.contrast);
      for (const t of seg.tokens) out.push({ ...pick(t), scope, index: out.length });
    });
    // A verbless clause ("None of these problems.") has no main part: its own words say what it denies.
    const head = verbal ? main : segs.filter((s) => !s.contrast);
    const words = head.flatMap((s) => s.tokens);
    const pronoun = words.findIndex((t) => ANAPHORS.has(t.surface.toLowerCase()));
    return {
      tokens: withJoined(out),
      start: out[0]!.start,
      end: out.at(-1)!.end,
      hasVerb: verbal || sentenceHasVerb.has(segs[0]!.tokens[0]!.sentence),
      deniesBack: words.some((t) => t.negation && QUANTIFIERS.has(t.surface.toLowerCase()))
        ? "answer"
        : orphanNegation
          ? "sentence"
          : undefined,
      // "This is not…" (subject) or "… don't have these problems" (demonstrative): points back.
      anaphoricNegation:
        words.some((t) => t.negation) &&
        words.some((t) => [...t.keys].some((k) => DENIALS.has(k))) &&
        pronoun >= 0 &&
        (pronoun < 3 || DEMONSTRATIVES.has(words[pronoun]!.surface.toLowerCase())),
      ...(afterNegation ? { unclear: "a relative clause after a negation" } : {}),
      sentence: segs[0]!.tokens[0]!.sentence,
    };
  });
}

function pick(t: RawToken): Omit<Token, "scope" | "index"> {
  return { keys: t.keys, surface: t.surface, start: t.start, end: t.end, negation: t.negation, stop: t.stop };
}

/** "hyper parameters", "hyper-parameters" and "hyperparameters" meet on one joined key. */
function withJoined(tokens: Token[]): Token[] {
  const out = [...tokens];
  for (let i = 0; i + 1 < tokens.length; i++) {
    const [a, b] = [tokens[i]!, tokens[i + 1]!];
    if (a.negation || b.negation || !/\p{L}/u.test(a.surface) || !/\p{L}/u.test(b.surface)) continue;
    const head = a.surface.toLowerCase();
    out.push({ ...a, end: b.end, keys: new Set([...b.keys].map((k) => head + k)), stop: false, index: i, virtual: "joined" });
  }
  return out;
}

/** How a rubric phrase is read: the same lemmas as answers, hyphens closed up, common words dropped. */
export interface PhraseWord {
  keys: Set<string>;
  negation: boolean;
}

export function phraseWords(phrase: string): PhraseWord[] {
  const tokens = tokenise(phrase.replace(/(\p{L})-(?=\p{L})/gu, "$1")).filter((t) => !t.boundary && t.pos !== "SPACE");
  const content = tokens.filter((t) => t.negation || !t.stop);
  const kept = content.some((t) => !t.negation) ? content : tokens;
  return kept.map((t) => ({ keys: t.keys, negation: t.negation }));
}
