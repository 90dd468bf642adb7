import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { authErrors, errorBody, isoDate, slug, uuid } from "./schemas.ts";

const assignmentBody = z
  .object({
    id: uuid,
    courseId: uuid,
    problemSet: z.string(),
    title: z.string(),
    opensAt: z.date().nullable(),
    dueAt: z.date().nullable(),
    lateUntil: z.date().nullable(),
    latePenaltyPerDay: z.number(),
    maxAttempts: z.number().int().nullable(),
    scorePolicy: z.enum(["best", "last"]),
    createdAt: z.date(),
  })
  .meta({ id: "Assignment" });

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
          title: z.string().trim().min(1).max(200).optional(),
          opensAt: isoDate.optional(),
          dueAt: isoDate.optional(),
          lateUntil: isoDate.optional(),
          latePenaltyPerDay: z.number().min(0).max(1).optional(),
          maxAttempts: z.number().int().min(1).max(1000).optional(),
          scorePolicy: z.enum(["best", "last"]).optional(),
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
        response: { 200: z.array(assignmentBody), ...authErrors },
      },
    },
    async (req) => app.services.courses.listAssignments(req.principal, req.params.courseId),
  );
};
