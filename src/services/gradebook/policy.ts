import { z } from "zod";
import { round6 } from "../../../graders/result.ts";

/**
 * The assignment's rules, applied: windows, late factors, attempts and the score of record. Pure
 * functions of the assignment, the student's extension and their submissions, so the API, the
 * exports and the regrade report all compute the same numbers (and tests can state them exactly).
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** A late step: a submission at most `hoursLate` hours after the due date keeps `factor` of its score. */
export const lateStepsSchema = z
  .array(
    z.strictObject({
      hoursLate: z
        .number()
        .positive()
        .max(24 * 366),
      factor: z.number().min(0).max(1),
    }),
  )
  .min(1)
  .max(20)
  .refine((steps) => steps.every((s, i) => i === 0 || s.hoursLate > steps[i - 1]!.hoursLate), "steps must be in ascending hoursLate order")
  // A later submission never keeps more than an earlier one: otherwise an extension could lower a score.
  .refine((steps) => steps.every((s, i) => i === 0 || s.factor <= steps[i - 1]!.factor), "factors must not increase with lateness");
export type LateStep = z.infer<typeof lateStepsSchema>[number];

export interface AssignmentPolicy {
  opensAt: Date | null;
  dueAt: Date | null;
  lateUntil: Date | null;
  latePenaltyPerDay: number;
  lateSteps: LateStep[] | null;
  maxAttempts: number | null;
  scorePolicy: "best" | "last";
  timeLimitMinutes: number | null;
  countPrecheckRejections: boolean;
  countRunRejections: boolean;
}

export interface ExtensionFacts {
  dueAt: Date | null;
  lateUntil: Date | null;
  extraAttempts: number;
  extraMinutes: number;
}

/** The policy as it applies to one student: their extension folded in, and their exam deadline once started. */
export interface StudentPolicy extends AssignmentPolicy {
  /** Timed assignments: when this student's time runs out (null before their first view, or untimed). */
  examEndsAt: Date | null;
}

/** Reads Assignment.lateSteps (JSON); a stored value that no longer parses counts as no steps. */
export function parseLateSteps(json: unknown): LateStep[] | null {
  if (json === null || json === undefined) return null;
  const parsed = lateStepsSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}

/** An assignment row's rules as stored (any shape with these fields: a Prisma row, a pg row); lateSteps still JSON. */
export type AssignmentRules = Omit<AssignmentPolicy, "lateSteps"> & { lateSteps: unknown };

/** An assignment's rules as the pure policy reads them: the grades API, the submit path and the exports all use this. */
export function assignmentPolicy(a: AssignmentRules): AssignmentPolicy {
  return {
    opensAt: a.opensAt,
    dueAt: a.dueAt,
    lateUntil: a.lateUntil,
    latePenaltyPerDay: a.latePenaltyPerDay,
    lateSteps: parseLateSteps(a.lateSteps),
    maxAttempts: a.maxAttempts,
    scorePolicy: a.scorePolicy,
    timeLimitMinutes: a.timeLimitMinutes,
    countPrecheckRejections: a.countPrecheckRejections,
    countRunRejections: a.countRunRejections,
  };
}

export function studentPolicy(a: AssignmentPolicy, ext: ExtensionFacts | null, examStartedAt: Date | null): StudentPolicy {
  const dueAt = ext?.dueAt ?? a.dueAt;
  // An extension that moves the due date past the late limit moves the late limit with it.
  let lateUntil = ext?.lateUntil ?? a.lateUntil;
  if (lateUntil && dueAt && lateUntil < dueAt) lateUntil = dueAt;
  const maxAttempts = a.maxAttempts === null ? null : a.maxAttempts + (ext?.extraAttempts ?? 0);
  const examEndsAt =
    a.timeLimitMinutes !== null && examStartedAt
      ? new Date(examStartedAt.getTime() + (a.timeLimitMinutes + (ext?.extraMinutes ?? 0)) * 60_000)
      : null;
  return { ...a, dueAt, lateUntil, maxAttempts, examEndsAt };
}

export type WindowState =
  | { open: true; lateFactor: number; late: boolean }
  | { open: false; reason: "ASSIGNMENT_NOT_OPEN" | "ASSIGNMENT_CLOSED" | "EXAM_TIME_OVER"; at: Date };

/** Whether a submission at `at` is accepted, and the fraction of its score it keeps. */
export function windowAt(p: StudentPolicy, at: Date): WindowState {
  if (p.opensAt && at < p.opensAt) return { open: false, reason: "ASSIGNMENT_NOT_OPEN", at: p.opensAt };
  if (p.examEndsAt && at > p.examEndsAt) return { open: false, reason: "EXAM_TIME_OVER", at: p.examEndsAt };
  if (!p.dueAt || at <= p.dueAt) return { open: true, lateFactor: 1, late: false };
  if (!p.lateUntil || at > p.lateUntil) return { open: false, reason: "ASSIGNMENT_CLOSED", at: p.lateUntil ?? p.dueAt };
  return { open: true, lateFactor: lateFactor(p, at.getTime() - p.dueAt.getTime()), late: true };
}

/** Steps when the assignment has them (past the last step: 0), else the per-day rate per started day. */
function lateFactor(p: AssignmentPolicy, lateMs: number): number {
  if (p.lateSteps) return p.lateSteps.find((s) => lateMs <= s.hoursLate * HOUR_MS)?.factor ?? 0;
  return Math.max(0, round6(1 - Math.ceil(lateMs / DAY_MS) * p.latePenaltyPerDay));
}

/** Rejections by a model that ran: its behaviour on the private inputs showed, so they use an attempt by default. */
export const RAN_REJECTION_CODES = new Set([
  "MODEL_TIMEOUT",
  "MODEL_CRASHED",
  "MODEL_OUT_OF_MEMORY",
  "MODEL_RUN_FAILED",
  "MODEL_BAD_OUTPUT",
]);

export interface SubmissionFacts {
  id: string;
  attempt: number;
  createdAt: Date;
  status: "queued" | "running" | "graded" | "rejected" | "failed";
  lastErrorCode: string | null;
  /** The current automatic grade (before any late factor): null until graded. */
  rawScore: number | null;
  maxScore: number | null;
  override: OverrideFacts | null;
}

export interface OverrideFacts {
  score: number;
  comment: string | null;
  byId: string | null;
  at: Date;
}

/**
 * Infrastructure failures never use an attempt. A rejection before anything of the answer ran uses one
 * only when the assignment says so; one after the model ran uses one unless the assignment says not.
 * Queued and running submissions count: they may yet be graded.
 */
export function usesAttempt(p: AssignmentPolicy, s: Pick<SubmissionFacts, "status" | "lastErrorCode">): boolean {
  if (s.status === "failed") return false;
  if (s.status !== "rejected") return true;
  return s.lastErrorCode && RAN_REJECTION_CODES.has(s.lastErrorCode) ? p.countRunRejections : p.countPrecheckRejections;
}

export interface ProblemRecord {
  problem: string;
  maxScore: number;
  /** The score of record: null when nothing counted yet. */
  score: number | null;
  /** The submission that counted and how its score came about. */
  submissionId: string | null;
  attempt: number | null;
  rawScore: number | null;
  lateFactor: number | null;
  override: OverrideFacts | null;
  attemptsUsed: number;
  /** Submissions not graded yet: the record may still change. */
  pending: number;
}

/** What one submission is worth under the policy: the override if any, else its raw score times its late factor. */
function worth(p: StudentPolicy, s: SubmissionFacts): { score: number; lateFactor: number } | null {
  const w = windowAt(p, s.createdAt);
  const factor = w.open ? w.lateFactor : s.createdAt < (p.opensAt ?? s.createdAt) ? 1 : 0;
  if (s.override) return { score: s.override.score, lateFactor: factor };
  if (s.rawScore === null || (s.status !== "graded" && s.status !== "rejected")) return null;
  // A rejection that used no attempt (refused before anything ran) is no answer: under `last` it must not replace one.
  if (!usesAttempt(p, s)) return null;
  return { score: round6(s.rawScore * factor), lateFactor: factor };
}

/**
 * The score of record for one (student, problem): `best` takes the highest-scoring counted submission
 * (the earliest on a tie), `last` the newest one that has a result. Late factors follow the student's
 * policy at the time each was submitted, so an extension granted later applies to earlier work.
 */
export function problemRecord(p: StudentPolicy, problem: { slug: string; points: number }, subs: SubmissionFacts[]): ProblemRecord {
  const ordered = [...subs].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.attempt - b.attempt);
  let chosen: { s: SubmissionFacts; score: number; lateFactor: number } | null = null;
  for (const s of ordered) {
    const w = worth(p, s);
    if (!w) continue;
    if (!chosen || p.scorePolicy === "last" || w.score > chosen.score) chosen = { s, ...w };
  }
  return {
    problem: problem.slug,
    maxScore: problem.points,
    score: chosen ? chosen.score : null,
    submissionId: chosen?.s.id ?? null,
    attempt: chosen?.s.attempt ?? null,
    rawScore: chosen?.s.rawScore ?? null,
    lateFactor: chosen?.lateFactor ?? null,
    override: chosen?.s.override ?? null,
    attemptsUsed: subs.filter((s) => usesAttempt(p, s)).length,
    pending: subs.filter((s) => s.status === "queued" || s.status === "running").length,
  };
}

/** The assignment total: the sum of the problems' scores of record (a problem with none counts 0). */
export function totalOf(problems: ProblemRecord[]): { score: number; maxScore: number } {
  return {
    score: round6(problems.reduce((t, r) => t + (r.score ?? 0), 0)),
    maxScore: round6(problems.reduce((t, r) => t + r.maxScore, 0)),
  };
}
