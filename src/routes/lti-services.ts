import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { CourseLtiService } from "../lti/course-lti.ts";
import { pagedResponse, pageQuery, sendPage } from "./pagination.ts";
import { authErrors, errorBody, uuid } from "./schemas.ts";

/** A course's roster (NRPS sync, enrolments with their source) and its LTI score passbacks (dead letters, retry). */

const courseParams = z.object({ courseId: uuid });

const enrollment = z
  .object({
    userId: uuid,
    name: z.string(),
    email: z.string(),
    role: z.enum(["student", "ta", "instructor"]),
    source: z
      .enum(["api", "lti", "roster"])
      .meta({ description: "api: set through this API; lti: by a launch; roster: by an NRPS roster sync" }),
  })
  .meta({ id: "Enrollment" });

const passback = z
  .object({
    id: uuid,
    assignmentId: uuid,
    assignmentTitle: z.string(),
    userId: uuid,
    name: z.string(),
    email: z.string(),
    lms: z.object({ issuer: z.string(), contextId: z.string(), title: z.string().nullable() }),
    scoreGiven: z.number(),
    scoreMaximum: z.number(),
    comment: z.string().nullable(),
    status: z.enum(["pending", "sent", "dead"]),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable().meta({ description: "The LMS's last HTTP status (null: no answer, e.g. a network error)" }),
    lastResponse: z.string().nullable().meta({ description: "The LMS's last answer, truncated: why a dead letter died" }),
    createdAt: z.date(),
    updatedAt: z.date(),
    sentAt: z.date().nullable(),
  })
  .meta({ id: "ScorePassback" });

export const ltiServiceRoutes: FastifyPluginAsyncZod = async (app) => {
  const service = new CourseLtiService(app.db, app.queue);

  app.post(
    "/v1/courses/:courseId/roster/sync",
    {
      schema: {
        tags: ["lti"],
        summary: "Sync the roster from the LMS (NRPS) for every linked LTI context of the course (course staff)",
        description: "Enqueues one sync per context with a membership service; `contexts: 0` when the course has none.",
        params: courseParams,
        response: { 202: z.object({ contexts: z.number().int() }), ...authErrors },
      },
    },
    async (req, reply) => reply.status(202).send(await service.syncRoster(req.principal, req.params.courseId)),
  );

  app.get(
    "/v1/courses/:courseId/enrollments",
    {
      schema: {
        tags: ["courses"],
        summary: "The course's roster: each member's name, email, role and where the enrolment came from (course staff, admin)",
        params: courseParams,
        querystring: z.object(pageQuery),
        response: { 200: pagedResponse(enrollment), ...authErrors },
      },
    },
    async (req, reply) => sendPage(req, reply, req.query, await service.enrollments(req.principal, req.params.courseId, req.query)),
  );

  app.get(
    "/v1/courses/:courseId/passbacks",
    {
      schema: {
        tags: ["lti"],
        summary: "Score passbacks to the LMS, newest first, with the LMS's last answer (course staff)",
        description: "`status=dead`: the dead letters an instructor can retry.",
        params: courseParams,
        querystring: z.object({ status: z.enum(["pending", "sent", "dead"]).optional(), ...pageQuery }),
        response: { 200: pagedResponse(passback), ...authErrors },
      },
    },
    async (req, reply) => {
      const page = await service.passbacks(req.principal, req.params.courseId, req.query.status, req.query);
      return sendPage(req, reply, req.query, page);
    },
  );

  app.post(
    "/v1/courses/:courseId/passbacks/:id/retry",
    {
      schema: {
        tags: ["lti"],
        summary: "Send a dead-lettered score to the LMS again (instructor)",
        params: z.object({ courseId: uuid, id: uuid }),
        response: { 202: z.object({ id: uuid, status: z.literal("pending") }), ...authErrors, 409: errorBody },
      },
    },
    async (req, reply) => reply.status(202).send(await service.retryPassback(req.principal, req.params.courseId, req.params.id)),
  );
};
