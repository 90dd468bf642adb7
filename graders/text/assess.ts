import { compiledEntry } from "./config.ts";
import { findEntry, type Hit, applySynonyms, type Synonym } from "./match.ts";
import { analyse, type Clause } from "./nlp.ts";

/** What an answer says about one rubric idea (a concept or a misconception). */
export type Outcome =
  | { kind: "found"; hit: Hit; confidence: number; why: string }
  | { kind: "negated"; hit: Hit }
  | { kind: "unclear"; hit: Hit; reason: string }
  | { kind: "absent" };

/** Below this a found concept still counts, but staff should read the answer. */
export const LOW_CONFIDENCE = 0.5;

export interface Reading {
  clauses: Clause[];
  /** No clause has a verb: a bare list of terms. */
  list: boolean;
  outcomes: Outcome[];
}

/**
 * Reads the answer once and decides every idea: asserted (best hit by confidence), denied, or
 * unclear. A later clause that names no idea of its own but may deny earlier ones ("none of
 * these…", "…, as we saw, doesn't matter") makes what it follows unclear (earns nothing,
 * flagged); a negated clause about "it"/"this" lowers the confidence of what precedes it.
 */
export function read(raw: string, ideas: { accept: string[] }[], synonyms: Synonym[]): Reading {
  const clauses = analyse(raw).map((c) => applySynonyms(c, synonyms));
  const hitsPerIdea = ideas.map((idea) => idea.accept.flatMap((source) => findEntry(compiledEntry(source), clauses, raw)));
  const outcomes = hitsPerIdea.map(decide);
  const named = new Set(hitsPerIdea.flat().map((h) => h.clause));
  clauses.forEach((clause, ci) => {
    if (named.has(ci)) return;
    const quote = snippet(raw, clause);
    outcomes.forEach((o, k) => {
      if (o.kind !== "found" || o.hit.clause >= ci) return;
      if (clause.deniesBack === "answer" || (clause.deniesBack === "sentence" && clauses[o.hit.clause]!.sentence === clause.sentence)) {
        outcomes[k] = { kind: "unclear", hit: o.hit, reason: `a later clause ("${quote}") may deny it` };
      } else if (clause.anaphoricNegation && clauses[o.hit.clause]!.sentence >= clause.sentence - 1) {
        outcomes[k] = { ...o, confidence: Math.min(o.confidence, 0.4), why: `${o.why}; the next clause ("${quote}") may deny it` };
      }
    });
  });
  return { clauses, list: !clauses.some((c) => c.hasVerb), outcomes };
}

function decide(hits: Hit[]): Outcome {
  const asserted = hits.filter((h) => !h.negated && !h.unclear).sort((a, b) => b.confidence - a.confidence)[0];
  if (asserted) return { kind: "found", hit: asserted, confidence: asserted.confidence, why: asserted.why };
  const unclear = hits.find((h) => h.unclear);
  if (unclear) return { kind: "unclear", hit: unclear, reason: unclear.unclear! };
  const negated = hits[0];
  return negated ? { kind: "negated", hit: negated } : { kind: "absent" };
}

/** The clause an outcome rests on, shortened, for staff. */
export function snippet(raw: string, clause: { start: number; end: number }): string {
  const text = raw.slice(clause.start, clause.end).replace(/\s+/g, " ").trim();
  return text.length > 90 ? `${text.slice(0, 87)}…` : text;
}
