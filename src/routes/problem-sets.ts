import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { loadSetFromTarGz } from "../catalog/index.ts";
import { BadRequestError, UnprocessableError } from "../errors.ts";
import { authErrors, errorBody } from "./schemas.ts";

const problemSummary = z.object({ slug: z.string(), title: z.string(), points: z.number(), type: z.string() });
const setSummary = z
  .object({ slug: z.string(), title: z.string(), revision: z.number().int(), problems: z.array(problemSummary) })
  .meta({ id: "ProblemSetSummary" });

export const problemSetRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/v1/problem-sets",
    {
      schema: {
        tags: ["problem-sets"],
        summary: "List problem sets at their latest revision",
        response: { 200: z.array(setSummary), ...authErrors },
      },
    },
    async () => app.services.problemSets.list(),
  );

  app.get(
    "/v1/problem-sets/:slug",
    {
      schema: {
        tags: ["problem-sets"],
        summary: "A problem set with statements (the caller's own numbers) and answer formats",
        params: z.object({ slug: z.string().max(100) }),
        response: {
          200: setSummary.extend({
            description: z.string().nullable(),
            problems: z.array(problemSummary.extend({ statement: z.string(), answerFormat: z.record(z.string(), z.unknown()) })),
          }),
          ...authErrors,
        },
      },
    },
    async (req) => app.services.problemSets.get(req.principal, req.params.slug),
  );

  app.post(
    "/v1/problem-sets",
    {
      schema: {
        tags: ["problem-sets"],
        summary: "Upload a problem set bundle (admin, instructor): multipart field `bundle`, a .tar.gz of one set folder",
        consumes: ["multipart/form-data"],
        response: {
          201: setSummary.extend({ created: z.boolean() }),
          ...authErrors,
          413: errorBody,
          415: errorBody,
          422: errorBody,
        },
      },
    },
    async (req, reply) => {
      await app.services.problemSets.requireUploader(req.principal);
      if (!req.isMultipart()) throw new UnprocessableError("NOT_MULTIPART", "Send multipart/form-data with one file field `bundle`.");
      const file = await req.file({ limits: { fileSize: app.config.BUNDLE_LIMIT_BYTES, files: 1 } });
      if (!file || file.fieldname !== "bundle")
        throw new BadRequestError("MISSING_BUNDLE", "Send the .tar.gz as the multipart file field `bundle`.");
      const buffer = await file.toBuffer();
      const loaded = await loadSetFromTarGz(buffer, { maxTotalBytes: app.config.BUNDLE_LIMIT_BYTES });
      if (!loaded.ok)
        throw new UnprocessableError(
          "INVALID_BUNDLE",
          `The bundle has ${loaded.errors.length} error(s); each names its file and field.`,
          loaded.errors,
        );
      const saved = await app.services.problemSets.save(loaded.set, "upload", req.principal);
      return reply.status(201).send(saved);
    },
  );
};
