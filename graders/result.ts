import type { z } from "zod";
import type { GradeResult, TestResult } from "./types.ts";

/** Scores are stored rounded to 1e-6 so that sums of fractions compare equal. */
export const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

export function test(name: string, score: number, maxScore: number, message: string): TestResult {
  const s = round6(score);
  const max = round6(maxScore);
  const status = s >= max ? "passed" : s > 0 ? "partial" : "failed";
  return { name, score: s, maxScore: max, status, message, visibility: "visible" };
}

export function graded(points: number, score: number, summary: string, tests: TestResult[]): GradeResult {
  return {
    score: round6(Math.min(points, Math.max(0, score))),
    maxScore: round6(points),
    status: "graded",
    feedback: { summary, tests },
  };
}

/** The answer could not be graded as submitted (a student's mistake of form); the message says why. */
export function rejected(points: number, message: string, code?: string): GradeResult {
  return { score: 0, maxScore: round6(points), status: "rejected", feedback: { summary: message, tests: [] }, ...(code && { code }) };
}

/** The problem itself is broken (e.g. a reference that is not finite for this student's parameters). */
export function problemError(points: number, message: string, code?: string): GradeResult {
  return { score: 0, maxScore: round6(points), status: "error", feedback: { summary: message, tests: [] }, ...(code && { code }) };
}

/** zod issues as one line: "selected[0]: Invalid input; ..." */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ");
}

/**
 * Re-validates config and answer inside grade(): the worker should pass parsed values,
 * but a raw config (no defaults filled in) would otherwise grade silently wrong.
 * Parsing is idempotent, so this costs nothing when the caller did it already.
 */
export function prepare<C, A>(
  schemas: { configSchema: z.ZodType<C>; answerSchema: z.ZodType<A> },
  input: { config: unknown; answer: unknown; points: number },
): { ok: true; config: C; answer: A } | { ok: false; result: GradeResult } {
  const config = schemas.configSchema.safeParse(input.config);
  if (!config.success) {
    return { ok: false, result: problemError(input.points, `Invalid problem configuration: ${describeIssues(config.error)}`) };
  }
  const answer = schemas.answerSchema.safeParse(input.answer);
  if (!answer.success) {
    return { ok: false, result: rejected(input.points, `Invalid answer: ${describeIssues(answer.error)}`) };
  }
  return { ok: true, config: config.data, answer: answer.data };
}
