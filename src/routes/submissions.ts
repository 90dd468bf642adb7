import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { FastifyRequest } from "fastify";
import { BadRequestError } from "../errors.ts";
import { authErrors, errorBody, submissionBody, uuid } from "./schemas.ts";

async function readModel(req: FastifyRequest, maxBytes: number) {
  const file = await req.file({ limits: { fileSize: maxBytes, files: 1 } });
  if (!file || file.fieldname !== "model")
    throw new BadRequestError("MISSING_MODEL", "Send the ONNX file as the multipart file field `model`.");
  return { bytes: new Uint8Array(await file.toBuffer()), filename: file.filename };
}

export const submissionRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    "/v1/assignments/:assignmentId/problems/:problemSlug/submissions",
    {
      schema: {
        tags: ["submissions"],
        summary: "Submit an answer; grading happens on a worker (poll GET /v1/submissions/{id})",
        description:
          "JSON `{answer}` whose shape the problem's `answerFormat` gives, or, for ONNX problems, multipart/form-data with the file field `model` " +
          "(checked before it is stored: ONNX parse, signature and budget from `answerFormat`; 422 `MODEL_REJECTED` with `details.reason`). " +
          "With `Idempotency-Key`, a retried request returns the first submission instead of a new attempt.",
        params: z.object({ assignmentId: uuid, problemSlug: z.string().max(100) }),
        headers: z.object({ "idempotency-key": z.string().min(1).max(200).optional() }),
        body: z.strictObject({ answer: z.unknown() }),
        response: {
          202: z.object({ id: uuid, status: z.string(), attempt: z.number().int() }),
          ...authErrors,
          409: errorBody,
          413: errorBody,
          415: errorBody,
          422: errorBody,
        },
      },
      // A multipart upload has no JSON body to validate; the file is read and checked in the handler.
      preValidation: async (req) => {
        if (req.isMultipart()) req.body = { answer: undefined };
      },
    },
    async (req, reply) => {
      const payload = req.isMultipart() ? { model: await readModel(req, app.config.MODEL_MAX_BYTES) } : { answer: req.body.answer };
      const result = await app.services.submissions.submit(req.principal, {
        assignmentId: req.params.assignmentId,
        problemSlug: req.params.problemSlug,
        ...payload,
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
