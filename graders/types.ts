import { z } from "zod";
import type { ModelRuntime, ModelSpec } from "./onnx/types.ts";

/** Who may see a test's details: everyone, nobody but staff, or students once the due date passed. */
export const visibilitySchema = z.enum(["visible", "hidden", "after_due"]);

export const testResultSchema = z.object({
  name: z.string(),
  score: z.number(),
  maxScore: z.number(),
  status: z.enum(["passed", "failed", "partial", "error"]),
  message: z.string(),
  visibility: visibilitySchema.default("visible"),
  /** What only staff see: raw runtime errors or private shapes and values; students get `message`. */
  staffMessage: z.string().optional(),
  /** A nudge for a student who missed this test, never the answer; shown to students while the test is not passed. */
  hint: z.string().optional(),
  /** What was expected (e.g. a rubric concept's description): students see it only once the assignment closed. */
  answerKey: z.string().optional(),
});
export type TestResult = z.infer<typeof testResultSchema>;

/** The one result schema every grader returns (DESIGN.md, "Grading rules"). */
export const gradeResultSchema = z.object({
  score: z.number().min(0),
  maxScore: z.number().min(0),
  status: z.enum(["graded", "rejected", "error"]),
  feedback: z.object({
    summary: z.string(),
    tests: z.array(testResultSchema),
    /** Why staff should look (low-confidence matches, unclear negations…); never shown to students. */
    reviewReasons: z.array(z.string()).optional(),
  }),
  /** Machine-readable reason of a `rejected` or `error` result (e.g. MODEL_TIMEOUT), stored as Submission.lastErrorCode. */
  code: z.string().optional(),
  /** Set when the grader is not confident (e.g. free text); staff should look. */
  needsReview: z.boolean().optional(),
  /** Model graders: how the score was made (provider, onnxruntime version, input seed), for reproduction. */
  provenance: z.object({ executionProvider: z.string(), ortVersion: z.string(), inputSeed: z.string() }).optional(),
});
export type GradeResult = z.infer<typeof gradeResultSchema>;

/** Private files of the problem folder by path relative to it (never shown to students). */
export type PrivateData = ReadonlyMap<string, Uint8Array>;

export interface GradeInput<C, A> {
  config: C;
  privateData: PrivateData;
  answer: A;
  /** Deterministic per (student, problem); drives randomised parameters and inputs. */
  seed: string;
  /** The problem's points: a full-marks answer scores exactly this. */
  points: number;
  /** Model graders only: the uploaded model's bytes (answer holds its sha256), and where to run models. */
  model?: Uint8Array;
  runtime?: ModelRuntime;
  /** Aborted when the run's wall-clock budget is spent: pass it to every model session you open. */
  signal?: AbortSignal;
  /** Long evaluations report progress (the CLI draws a bar from it). */
  onProgress?: (done: number, total: number) => void;
}

/** A config mistake found by a grader's selfCheck: where in the grader config (path) and what to fix. */
export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

/** Values a randomised problem shows one student, substituted into `{{name}}` in the statement. */
export type Params = Record<string, number | number[] | number[][]>;

export interface Grader<C = any, A = any> {
  type: string;
  /** Bumped whenever grading behaviour changes; recorded on every grade. */
  version: string;
  configSchema: z.ZodType<C>;
  /** Validates an answer at submission time (400 on mismatch). */
  answerSchema: z.ZodType<A>;
  /** What a client needs to answer; never the answer, private data or reference outputs. */
  answerFormat(config: C, seed: string): Record<string, unknown>;
  /** Parameters this student sees (randomised problems); {} otherwise. */
  params?(config: C, seed: string): Params;
  /** Files of the problem folder the config names; the catalog checks they exist. */
  privateFiles?(config: C): string[];
  /** Graders that take an uploaded model: the signature and budget preflight checks before any session. */
  modelSpec?(config: C): ModelSpec;
  /** Checks a config against what it declares of itself (a rubric's graded examples); the catalog refuses a config with issues. */
  selfCheck?(config: C, context: { points: number; privateData: PrivateData }): ConfigIssue[];
  /** Completes a parsed config from the problem's files at load (e.g. output shapes read from a reference model); the catalog stores the result. */
  resolveConfig?(
    config: C,
    privateData: PrivateData,
  ): { ok: true; config: C } | { ok: false; issues: { path: (string | number)[]; message: string }[] };
  grade(input: GradeInput<C, A>): GradeResult | Promise<GradeResult>;
}
