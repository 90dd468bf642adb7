import { z } from "zod";

export const errorBody = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) })
  .meta({ id: "Error" });

/** The error responses every authenticated route can give, for the OpenAPI document. */
export const authErrors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 429: errorBody, 503: errorBody };

export const uuid = z.string().uuid();
export const slug = z
  .string()
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "use lowercase letters, digits and single dashes")
  .max(100);

export const testResult = z.object({
  name: z.string(),
  score: z.number(),
  maxScore: z.number(),
  status: z.string(),
  message: z.string(),
  visibility: z.string().optional(),
  /** Students: a nudge for a test not passed. */
  hint: z.string().optional(),
  /** Students: what was expected, once the assignment closed (if the problem reveals it). */
  answerKey: z.string().optional(),
  // Staff only:
  staffMessage: z.string().optional(),
});

export const submissionBody = z
  .object({
    id: uuid,
    assignmentId: uuid,
    problem: z.string(),
    userId: uuid,
    status: z.enum(["queued", "running", "graded", "rejected", "failed"]),
    attempt: z.number().int(),
    score: z.number().nullable(),
    maxScore: z.number().nullable(),
    lateFactor: z.number(),
    /** A manual override, which is the score while it stands (staff also see byId and groupId). */
    override: z
      .object({
        score: z.number(),
        comment: z.string().nullable(),
        at: z.date(),
        byId: z.string().nullable().optional(),
        groupId: z.string().nullable().optional(),
      })
      .nullable()
      .optional(),
    feedback: z
      .object({ summary: z.string(), tests: z.array(testResult), reviewReasons: z.array(z.string()).optional() /* staff only */ })
      .nullable(),
    createdAt: z.date(),
    gradedAt: z.date().nullable(),
    // Staff only:
    answer: z.unknown().optional(),
    modelSha256: z.string().nullable().optional(),
    lastError: z.string().nullable().optional(),
    /** Why the last run failed or was rejected, for machines: GRADER_TIMEOUT, MODEL_TIMEOUT, GRADING_FAILED, … */
    lastErrorCode: z.string().nullable().optional(),
    needsReview: z.boolean().optional(),
    grades: z
      .array(
        z.object({
          id: uuid,
          run: z.number().int(),
          kind: z.string(),
          status: z.string(),
          score: z.number(),
          rawScore: z.number(),
          maxScore: z.number(),
          graderType: z.string(),
          graderVersion: z.string(),
          problemRevision: z.number().int(),
          executionProvider: z.string().nullable(),
          ortVersion: z.string().nullable(),
          inputSeed: z.string().nullable(),
          /** How the model ran: { memoryCapMb, user, network: "none" | "host", core, nprocs }; null for other graders. */
          isolation: z.unknown(),
          hashes: z.unknown(),
          durationMs: z.number().int(),
          comment: z.string().nullable(),
          createdAt: z.date(),
        }),
      )
      .optional(),
  })
  .meta({ id: "Submission" });

/** ISO 8601 with a time zone, e.g. 2026-12-01T17:00:00Z. */
export const isoDate = z.iso
  .datetime({ offset: true })
  .transform((s) => new Date(s))
  .meta({ description: "ISO 8601 date-time with zone, e.g. 2026-12-01T17:00:00Z" });
