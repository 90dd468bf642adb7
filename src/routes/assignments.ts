import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { assignmentBody, assignmentFields } from "./courses.ts";
import { pagedResponse, pageQuery, sendPage } from "./pagination.ts";
import { authErrors, errorBody, isoDate, uuid } from "./schemas.ts";

const params = z.object({ assignmentId: uuid });
const userParams = params.extend({ userId: uuid });

const extensionFacts = z.object({
  dueAt: z.date().nullable(),
  lateUntil: z.date().nullable(),
  extraAttempts: z.number().int(),
  extraMinutes: z.number().int(),
});

const assignmentPage = assignmentBody
  .extend({
    description: z.string().nullable(),
    problems: z.array(
      z.object({
        slug: z.string(),
        title: z.string(),
        points: z.number(),
        type: z.string(),
        statement: z.string(),
        answerFormat: z.record(z.string(), z.unknown()),
        score: z.number().nullable().meta({ description: "Students: their score of record so far" }),
        attemptsUsed: z.number().int().nullable(),
        attemptsLeft: z.number().int().nullable().meta({ description: "null: no limit (or staff)" }),
      }),
    ),
    yours: z.object({
      role: z.enum(["student", "staff"]),
      dueAt: z.date().nullable(),
      lateUntil: z.date().nullable(),
      maxAttempts: z.number().int().nullable(),
      examStartedAt: z.date().nullable(),
      examEndsAt: z.date().nullable(),
      extension: extensionFacts.nullable(),
      window: z.object({
        open: z.boolean(),
        lateFactor: z.number().optional().meta({ description: "What a submission now keeps of its score" }),
        reason: z.enum(["ASSIGNMENT_NOT_OPEN", "ASSIGNMENT_CLOSED", "EXAM_TIME_OVER"]).optional(),
        at: z.date().optional(),
      }),
    }),
  })
  .meta({ id: "AssignmentPage" });

const problemRecord = z.object({
  problem: z.string(),
  maxScore: z.number(),
  score: z.number().nullable().meta({ description: "The score of record; null when nothing counted yet" }),
  submissionId: uuid.nullable().meta({ description: "The submission that counted" }),
  attempt: z.number().int().nullable(),
  rawScore: z.number().nullable().meta({ description: "The counted submission's automatic score, before the late factor" }),
  lateFactor: z.number().nullable().meta({ description: "Fraction kept, from the student's dates as they are now" }),
  override: z.object({ score: z.number(), comment: z.string().nullable(), by: uuid.nullable(), at: z.date() }).nullable(),
  attemptsUsed: z.number().int(),
  pending: z.number().int().meta({ description: "Submissions not graded yet: the record may still change" }),
});

const gradebook = z
  .object({
    assignmentId: uuid,
    scorePolicy: z.enum(["best", "last"]),
    revision: z.number().int(),
    students: z.array(
      z.object({
        userId: uuid,
        name: z.string(),
        email: z.string(),
        policy: z.object({
          dueAt: z.date().nullable(),
          lateUntil: z.date().nullable(),
          maxAttempts: z.number().int().nullable(),
          examEndsAt: z.date().nullable(),
          extension: extensionFacts.nullable(),
        }),
        problems: z.array(problemRecord),
        total: z.object({ score: z.number(), maxScore: z.number() }),
      }),
    ),
  })
  .meta({ id: "AssignmentGrades" });

const extension = extensionFacts
  .extend({ assignmentId: uuid, userId: uuid, name: z.string(), email: z.string(), grantedById: uuid.nullable(), updatedAt: z.date() })
  .meta({ id: "Extension" });

const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();

export const assignmentRoutes: FastifyPluginAsyncZod = async (app) => {
  const svc = () => app.services.assignments;

  app.get(
    "/v1/assignments/:assignmentId",
    {
      schema: {
        tags: ["assignments"],
        summary: "An assignment with its pinned revision's problems, the caller's dates, attempts and exam deadline (course members)",
        description:
          "Students once it has opened (403 ASSIGNMENT_NOT_OPEN before). On a timed assignment a student's first view starts their clock: " +
          "`yours.examEndsAt` is when their submissions stop (EXAM_TIME_OVER).",
        params,
        response: { 200: assignmentPage, ...authErrors },
      },
    },
    async (req) => svc().get(req.principal, req.params.assignmentId),
  );

  app.patch(
    "/v1/assignments/:assignmentId",
    {
      schema: {
        tags: ["assignments"],
        summary: "Change an assignment's title, dates and rules (instructor); scores of record follow, audited",
        description: "null clears an optional setting. The pinned revision moves only through POST /v1/assignments/{id}/revision.",
        params,
        body: z.strictObject({
          title: assignmentFields.title.optional(),
          opensAt: nullable(isoDate),
          dueAt: nullable(isoDate),
          lateUntil: nullable(isoDate),
          latePenaltyPerDay: assignmentFields.latePenaltyPerDay.optional(),
          lateSteps: nullable(assignmentFields.lateSteps),
          maxAttempts: nullable(assignmentFields.maxAttempts),
          scorePolicy: assignmentFields.scorePolicy.optional(),
          timeLimitMinutes: nullable(assignmentFields.timeLimitMinutes),
          countPrecheckRejections: assignmentFields.countPrecheckRejections.optional(),
          countRunRejections: assignmentFields.countRunRejections.optional(),
          lmsAssignmentId: nullable(assignmentFields.lmsAssignmentId),
        }),
        response: { 200: assignmentBody, ...authErrors, 422: errorBody },
      },
    },
    async (req) => svc().update(req.principal, req.params.assignmentId, req.body),
  );

  app.get(
    "/v1/assignments/:assignmentId/grades",
    {
      schema: {
        tags: ["gradebook"],
        summary: "Scores of record per (student, problem) and totals, explained (staff: every student; a student: their own)",
        description:
          "For each problem: the counted submission, its raw score, the late factor, an override (score, comment, by, at), attempts used " +
          "and submissions still pending. `best` counts the highest-scoring submission, `last` the newest with a result.",
        params,
        response: { 200: gradebook, ...authErrors },
      },
    },
    async (req) => svc().grades(req.principal, req.params.assignmentId),
  );

  app.get(
    "/v1/assignments/:assignmentId/extensions",
    {
      schema: {
        tags: ["gradebook"],
        summary: "Every student's extension on an assignment (course staff)",
        params,
        querystring: z.object(pageQuery),
        response: { 200: pagedResponse(extension), ...authErrors },
      },
    },
    async (req, reply) =>
      sendPage(req, reply, req.query, await app.services.extensions.list(req.principal, req.params.assignmentId, req.query)),
  );

  app.put(
    "/v1/assignments/:assignmentId/extensions/:userId",
    {
      schema: {
        tags: ["gradebook"],
        summary: "Give a student an extension: new dates, extra attempts, extra exam minutes (course staff); replaces theirs, audited",
        description:
          "422 NOT_A_STUDENT when the user is not enrolled as a student of the course; 422 INVALID_EXTENSION for dates that do not fit.",
        params: userParams,
        body: z.strictObject({
          dueAt: isoDate.optional(),
          lateUntil: isoDate.optional(),
          extraAttempts: z.number().int().min(0).max(1000).optional(),
          extraMinutes: z
            .number()
            .int()
            .min(0)
            .max(60 * 24 * 14)
            .optional(),
        }),
        response: { 200: extension, ...authErrors, 422: errorBody },
      },
    },
    async (req) => app.services.extensions.put(req.principal, req.params.assignmentId, req.params.userId, req.body),
  );

  app.delete(
    "/v1/assignments/:assignmentId/extensions/:userId",
    {
      schema: {
        tags: ["gradebook"],
        summary: "Withdraw a student's extension (course staff); audited",
        params: userParams,
        response: { 204: z.null(), ...authErrors },
      },
    },
    async (req, reply) => {
      await app.services.extensions.remove(req.principal, req.params.assignmentId, req.params.userId);
      return reply.status(204).send(null);
    },
  );
};
