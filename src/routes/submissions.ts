import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { FastifyReply, FastifyRequest } from "fastify";
import { BadRequestError, PayloadTooLargeError } from "../errors.ts";
import { announceSubmission } from "../services/submission-events.ts";
import { longPoll, MAX_WAIT_SECONDS } from "./long-poll.ts";
import { pagedResponse, pageQuery, sendPage } from "./pagination.ts";
import { authErrors, errorBody, slug, submissionBody, uuid } from "./schemas.ts";

/**
 * Reads the `model` file under `maxBytes`: the multipart parser stops at the limit and, the moment it
 * does, the upload is dropped (nothing past the limit is buffered or read) and the request fails with 413.
 */
async function readModel(req: FastifyRequest, reply: FastifyReply, maxBytes: number) {
  const tooLarge = () => {
    // Close the connection after the answer instead of draining the rest of an oversized upload.
    reply.header("connection", "close");
    return new PayloadTooLargeError(`The model is larger than this problem accepts: at most ${maxBytes} bytes.`);
  };
  const file = await req.file({ limits: { fileSize: maxBytes, files: 1 } }).catch((e: { code?: string }) => {
    throw e.code === "FST_REQ_FILE_TOO_LARGE" ? tooLarge() : e;
  });
  if (!file || file.fieldname !== "model")
    throw new BadRequestError("MISSING_MODEL", "Send the ONNX file as the multipart file field `model`.");
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    file.file.on("data", (chunk: Buffer) => chunks.push(chunk));
    file.file.once("limit", () => {
      chunks.length = 0;
      // Stop the request's flow into the parser at once (it would otherwise skip through the rest of the
      // upload until the file stream's close, a tick later), then end the file stream.
      req.raw.unpipe();
      file.file.destroy();
      reject(tooLarge());
    });
    // The limit may have been hit before these listeners were attached: then the stream just ends, truncated.
    file.file.once("end", () => (file.file.truncated ? reject(tooLarge()) : resolve()));
    file.file.once("error", reject);
  });
  return { bytes: new Uint8Array(Buffer.concat(chunks)), filename: file.filename };
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
          "(authorised and held to the problem's byte limit before it is read, 413 past it; then checked before it is stored: ONNX parse, " +
          "signature and budget from `answerFormat`; 422 `MODEL_REJECTED` with `details.reason`). " +
          "With `Idempotency-Key`, a retried request returns the first submission instead of a new attempt.",
        params: z.object({ assignmentId: uuid, problemSlug: slug }),
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
      const submissions = app.services.submissions;
      const idempotencyKey = req.headers["idempotency-key"];
      // Authorised and sized before the upload is read: a refused or oversized model is never buffered.
      const target = await submissions.authorize(req.principal, {
        assignmentId: req.params.assignmentId,
        problemSlug: req.params.problemSlug,
        sendsModel: req.isMultipart(),
        idempotencyKey,
      });
      const payload =
        target.modelMaxBytes !== null ? { model: await readModel(req, reply, target.modelMaxBytes) } : { answer: req.body.answer };
      const result = await submissions.submit(target, { ...payload, idempotencyKey });
      if (result.replayed) reply.header("Idempotent-Replayed", "true");
      // Event streams show the new submission; not awaited (a publish on the queue's connection; never throws).
      else void announceSubmission(app, result.id, { assignmentId: target.assignment.id, userId: target.userId, status: result.status });
      return reply.status(202).send({ id: result.id, status: result.status, attempt: result.attempt });
    },
  );

  app.get(
    "/v1/submissions/:id",
    {
      schema: {
        tags: ["submissions"],
        summary: "A submission with its current grade (its author, course staff); `?wait=N` long-polls until it is graded",
        description:
          "With `wait` (seconds, 0–60), the answer is held until the status leaves `queued`/`running` or the time passes, " +
          "then the same body is sent: no polling loop needed.",
        params: z.object({ id: uuid }),
        querystring: z.object({
          wait: z.coerce.number().min(0).max(MAX_WAIT_SECONDS).optional().meta({ description: "Seconds to wait for a result (0–60)" }),
        }),
        response: { 200: submissionBody, ...authErrors },
      },
    },
    async (req, reply) => longPoll(app, req, reply, req.query.wait, () => app.services.submissions.get(req.principal, req.params.id)),
  );

  app.get(
    "/v1/assignments/:assignmentId/submissions",
    {
      schema: {
        tags: ["submissions"],
        summary: "Submissions to an assignment: staff see all (filters userId, problem), students their own",
        params: z.object({ assignmentId: uuid }),
        querystring: z.strictObject({ userId: uuid.optional(), problem: slug.optional(), ...pageQuery }),
        response: { 200: pagedResponse(submissionBody), ...authErrors },
      },
    },
    async (req, reply) => {
      const { userId, problem } = req.query;
      return sendPage(
        req,
        reply,
        req.query,
        await app.services.submissions.list(req.principal, req.params.assignmentId, { userId, problem }, req.query),
      );
    },
  );

  app.post(
    "/v1/submissions/:id/regrade",
    {
      schema: {
        tags: ["submissions"],
        summary: "Grade again against the assignment's pinned revision (course staff); the old grade stays in history",
        description:
          "A one-submission regrade: the new run starts at once (`run`), and `GET /v1/regrades/{regradeId}` reports the score of record " +
          "old → new once it is graded. 422 `PROBLEM_NOT_IN_REVISION` when the pinned revision has no problem of the submission's slug.",
        params: z.object({ id: uuid }),
        response: {
          202: z.object({ id: uuid, status: z.string(), run: z.number().int(), regradeId: uuid }),
          ...authErrors,
          422: errorBody,
        },
      },
    },
    async (req, reply) => reply.status(202).send(await app.services.regrades.regradeSubmission(req.principal, req.params.id)),
  );
};
