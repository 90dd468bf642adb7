import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { lateStepsSchema } from "../services/gradebook/policy.ts";
import { pagedResponse, pageQuery, sendPage } from "./pagination.ts";
import { authErrors, errorBody, isoDate, slug, uuid } from "./schemas.ts";

const lateSteps = lateStepsSchema.meta({
  description:
    "Instead of latePenaltyPerDay: [{hoursLate, factor}] in ascending hoursLate; a late submission keeps the factor of the first step " +
    "it is within (past the last step: 0). Not together with a latePenaltyPerDay above 0.",
});

export const assignmentBody = z
  .object({
    id: uuid,
    courseId: uuid,
    problemSet: z.string(),
    revision: z.number().int().meta({ description: "The set's revision this assignment serves and grades against (pinned)" }),
    title: z.string(),
    opensAt: z.date().nullable(),
    dueAt: z.date().nullable(),
    lateUntil: z.date().nullable(),
    latePenaltyPerDay: z.number(),
    maxAttempts: z.number().int().nullable(),
    scorePolicy: z.enum(["best", "last"]),
    lateSteps: lateStepsSchema.nullable(),
    timeLimitMinutes: z.number().int().nullable(),
    countPrecheckRejections: z.boolean(),
    countRunRejections: z.boolean(),
    lmsAssignmentId: z.string().nullable(),
    createdAt: z.date(),
  })
  .meta({ id: "Assignment" });

/** The settable fields of an assignment, shared by create (here) and change (PATCH /v1/assignments/{id}). */
export const assignmentFields = {
  title: z.string().trim().min(1).max(200),
  latePenaltyPerDay: z.number().min(0).max(1),
  lateSteps,
  maxAttempts: z.number().int().min(1).max(1000),
  scorePolicy: z.enum(["best", "last"]),
  timeLimitMinutes: z
    .number()
    .int()
    .min(1)
    .max(60 * 24 * 14)
    .meta({ description: "Exam window from the student's first view" }),
  countPrecheckRejections: z.boolean().meta({ description: "Whether a rejection before anything ran uses an attempt (default false)" }),
  countRunRejections: z.boolean().meta({ description: "Whether a rejection after the model ran uses an attempt (default true)" }),
  lmsAssignmentId: z.string().trim().min(1).max(200),
};

const courseParams = z.object({ courseId: uuid });

export const courseRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    "/v1/courses",
    {
      schema: {
        tags: ["courses"],
        summary: "Create a course (admin)",
        body: z.strictObject({ slug, title: z.string().trim().min(1).max(200) }),
        response: { 201: z.object({ id: uuid, slug: z.string(), title: z.string() }), ...authErrors, 409: errorBody },
      },
    },
    async (req, reply) => reply.status(201).send(await app.services.courses.create(req.principal, req.body)),
  );

  app.put(
    "/v1/courses/:courseId/enrollments/:userId",
    {
      schema: {
        tags: ["courses"],
        summary: "Enroll a user or change their course role (admin, instructor)",
        params: z.object({ courseId: uuid, userId: uuid }),
        body: z.strictObject({ role: z.enum(["student", "ta", "instructor"]) }),
        response: { 200: z.object({ courseId: uuid, userId: uuid, role: z.enum(["student", "ta", "instructor"]) }), ...authErrors },
      },
    },
    async (req) => app.services.courses.enroll(req.principal, req.params.courseId, req.params.userId, req.body.role),
  );

  app.post(
    "/v1/courses/:courseId/assignments",
    {
      schema: {
        tags: ["assignments"],
        summary: "Assign a problem set to a course (instructor)",
        params: courseParams,
        body: z.strictObject({
          problemSet: slug,
          title: assignmentFields.title.optional(),
          opensAt: isoDate.optional(),
          dueAt: isoDate.optional(),
          lateUntil: isoDate.optional(),
          latePenaltyPerDay: assignmentFields.latePenaltyPerDay.optional(),
          lateSteps: lateSteps.optional(),
          maxAttempts: assignmentFields.maxAttempts.optional(),
          scorePolicy: assignmentFields.scorePolicy.optional(),
          timeLimitMinutes: assignmentFields.timeLimitMinutes.optional(),
          countPrecheckRejections: assignmentFields.countPrecheckRejections.optional(),
          countRunRejections: assignmentFields.countRunRejections.optional(),
          lmsAssignmentId: assignmentFields.lmsAssignmentId.optional(),
        }),
        response: { 201: assignmentBody, ...authErrors, 422: errorBody },
      },
    },
    async (req, reply) => reply.status(201).send(await app.services.courses.createAssignment(req.principal, req.params.courseId, req.body)),
  );

  app.get(
    "/v1/courses/:courseId/assignments",
    {
      schema: {
        tags: ["assignments"],
        summary: "List a course's assignments (course members)",
        params: courseParams,
        querystring: z.object(pageQuery),
        response: { 200: pagedResponse(assignmentBody), ...authErrors },
      },
    },
    async (req, reply) =>
      sendPage(req, reply, req.query, await app.services.courses.listAssignments(req.principal, req.params.courseId, req.query)),
  );
};
