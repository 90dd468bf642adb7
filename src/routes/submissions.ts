import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { authErrors, errorBody, submissionBody, uuid } from "./schemas.ts";

export const submissionRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    "/v1/assignments/:assignmentId/problems/:problemSlug/submissions",
    {
      schema: {
        tags: ["submissions"],
        summary: "Submit an answer; grading happens on a worker (poll GET /v1/submissions/{id})",
        description:
          "JSON `{answer}` whose shape the problem's `answerFormat` gives. With `Idempotency-Key`, a retried request returns the first submission instead of a new attempt.",
        params: z.object({ assignmentId: uuid, problemSlug: z.string().max(100) }),
        headers: z.object({ "idempotency-key": z.string().min(1).max(200).optional() }),
        body: z.strictObject({ answer: z.unknown() }),
        response: {
          202: z.object({ id: uuid, status: z.string(), attempt: z.number().int() }),
          ...authErrors,
          409: errorBody,
          413: errorBody,
          415: errorBody,
        },
      },
    },
    async (req, reply) => {
      const result = await app.services.submissions.submit(req.principal, {
        assignmentId: req.params.assignmentId,
        problemSlug: req.params.problemSlug,
        answer: req.body.answer,
        idempotencyKey: req.headers["idempotency-key"],
      });
      if (result.replayed) reply.header("Idempotent-Replayed", "true");
      return reply.status(202).send({ id: result.id, status: result.status, attempt: result.attempt });
    },
  );

  app.get(
    "/v1/submissions/:id",
    {
      schema: {
        tags: ["submissions"],
        summary: "A submission with its current grade (its author, course staff)",
        params: z.object({ id: uuid }),
        response: { 200: submissionBody, ...authErrors },
      },
    },
    async (req) => app.services.submissions.get(req.principal, req.params.id),
  );

  app.get(
    "/v1/assignments/:assignmentId/submissions",
    {
      schema: {
        tags: ["submissions"],
        summary: "Submissions to an assignment: staff see all (filters userId, problem), students their own",
        params: z.object({ assignmentId: uuid }),
        querystring: z.strictObject({ userId: uuid.optional(), problem: z.string().max(100).optional() }),
        response: { 200: z.array(submissionBody), ...authErrors },
      },
    },
    async (req) => app.services.submissions.list(req.principal, req.params.assignmentId, req.query),
  );

  app.post(
    "/v1/submissions/:id/regrade",
    {
      schema: {
        tags: ["submissions"],
        summary: "Grade again against the problem's latest revision (course staff); the old grade stays in history",
        params: z.object({ id: uuid }),
        response: { 202: z.object({ id: uuid, status: z.string(), run: z.number().int() }), ...authErrors },
      },
    },
    async (req, reply) => reply.status(202).send(await app.services.submissions.regrade(req.principal, req.params.id)),
  );
};
