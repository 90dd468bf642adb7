import { round6 } from "../../../graders/result.ts";
import type { ExportAssignment, ExportSubmission, StudentGrades } from "./export-stream.ts";

/**
 * Course statistics from the same student stream as the exports. Scores are counted per distinct value (a
 * problem has few distinct scores), so the exact median needs no list of every student's score.
 */

export const HISTOGRAM_BINS = 10;
const TOP_MESSAGES = 5;
const TOP_CHOICES = 10;

export interface Distribution {
  /** Students with a score of record. */
  n: number;
  mean: number | null;
  median: number | null;
  /** 10 equal bins over [0, max]; the last bin includes max. */
  histogram: { from: number; to: number; count: number }[];
}

export interface ProblemStatistics extends Distribution {
  problem: string;
  title: string;
  type: string;
  maxScore: number;
  /** Attempts used by students who used any. */
  attempts: { students: number; mean: number | null; max: number };
  /** Choice problems: option ids selected in submissions below full marks, most frequent first. */
  wrongChoices: { option: string; count: number }[];
  /** Feedback (summary and test messages) of grades below full marks, the 5 most frequent; each grade counts once per message. */
  feedback: { message: string; count: number }[];
}

export interface AssignmentStatistics {
  assignmentId: string;
  title: string;
  maxTotal: number;
  total: Distribution;
  problems: ProblemStatistics[];
}

class Counter<K> {
  readonly counts = new Map<K, number>();
  add(k: K, by = 1) {
    this.counts.set(k, (this.counts.get(k) ?? 0) + by);
  }
  /** Most frequent first; ties in first-seen order (a Map keeps insertion order and the sort is stable). */
  top(n: number): [K, number][] {
    return [...this.counts].sort((a, b) => b[1] - a[1]).slice(0, n);
  }
}

class Scores {
  private readonly values = new Counter<number>();
  private n = 0;
  private sum = 0;
  constructor(private readonly max: number) {}
  add(score: number) {
    this.values.add(score);
    this.n++;
    this.sum += score;
  }
  result(): Distribution {
    const bins = Array.from({ length: HISTOGRAM_BINS }, (_, i) => ({
      from: round6((this.max * i) / HISTOGRAM_BINS),
      to: round6((this.max * (i + 1)) / HISTOGRAM_BINS),
      count: 0,
    }));
    for (const [score, count] of this.values.counts) {
      const bin = this.max > 0 ? Math.floor((score / this.max) * HISTOGRAM_BINS) : 0;
      bins[Math.min(HISTOGRAM_BINS - 1, Math.max(0, bin))]!.count += count;
    }
    return { n: this.n, mean: this.n ? round6(this.sum / this.n) : null, median: this.median(), histogram: bins };
  }
  private median(): number | null {
    if (!this.n) return null;
    const sorted = [...this.values.counts].sort((a, b) => a[0] - b[0]);
    const at = (k: number) => {
      let seen = 0;
      for (const [v, c] of sorted) if ((seen += c) > k) return v;
      return sorted[sorted.length - 1]![0];
    };
    return this.n % 2 ? at((this.n - 1) / 2) : round6((at(this.n / 2 - 1) + at(this.n / 2)) / 2);
  }
}

interface ProblemAcc {
  scores: Scores;
  attemptStudents: number;
  attemptSum: number;
  attemptMax: number;
  choices: Counter<string>;
  messages: Counter<string>;
}

/** The messages of one grade below full marks, each once. */
function messagesOf(feedback: unknown): Set<string> {
  const out = new Set<string>();
  const f = feedback as { summary?: unknown; tests?: { message?: unknown }[] } | null;
  if (typeof f?.summary === "string" && f.summary.trim()) out.add(f.summary.trim());
  for (const t of Array.isArray(f?.tests) ? f.tests : []) if (typeof t?.message === "string" && t.message.trim()) out.add(t.message.trim());
  return out;
}

export async function courseStatistics(assignments: ExportAssignment[], students: AsyncIterable<StudentGrades>) {
  const acc = assignments.map((a) => ({
    total: new Scores(a.maxTotal),
    problems: a.problems.map((p): ProblemAcc => ({
      scores: new Scores(p.points),
      attemptStudents: 0,
      attemptSum: 0,
      attemptMax: 0,
      choices: new Counter(),
      messages: new Counter(),
    })),
  }));
  let count = 0;
  for await (const s of students) {
    count++;
    s.assignments.forEach((a, i) => {
      const ac = acc[i]!;
      if (a.graded) ac.total.add(a.total.score);
      a.problems.forEach((r, j) => {
        const pa = ac.problems[j]!;
        if (r.score !== null) pa.scores.add(r.score);
        if (r.attemptsUsed > 0) {
          pa.attemptStudents++;
          pa.attemptSum += r.attemptsUsed;
          pa.attemptMax = Math.max(pa.attemptMax, r.attemptsUsed);
        }
        for (const sub of a.submissions.get(r.problem) ?? []) countSubmission(pa, sub);
      });
    });
  }
  return {
    students: count,
    assignments: assignments.map((a, i): AssignmentStatistics => ({
      assignmentId: a.id,
      title: a.title,
      maxTotal: a.maxTotal,
      total: acc[i]!.total.result(),
      problems: a.problems.map((p, j) => {
        const pa = acc[i]!.problems[j]!;
        return {
          problem: p.slug,
          title: p.title,
          type: p.graderType,
          maxScore: p.points,
          ...pa.scores.result(),
          attempts: {
            students: pa.attemptStudents,
            mean: pa.attemptStudents ? round6(pa.attemptSum / pa.attemptStudents) : null,
            max: pa.attemptMax,
          },
          wrongChoices: pa.choices.top(TOP_CHOICES).map(([option, count]) => ({ option, count })),
          feedback: pa.messages.top(TOP_MESSAGES).map(([message, count]) => ({ message, count })),
        };
      }),
    })),
  };
}

/** The stream carries choices and feedback only for grades below full marks. */
function countSubmission(pa: ProblemAcc, sub: ExportSubmission) {
  if (Array.isArray(sub.selected)) for (const id of new Set(sub.selected.map(String))) pa.choices.add(id);
  if (sub.feedback !== undefined) for (const m of messagesOf(sub.feedback)) pa.messages.add(m);
}
