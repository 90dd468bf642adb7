import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { loadSetFromTarGz } from "../catalog/index.ts";
import { BadRequestError, UnprocessableError } from "../errors.ts";
import { pagedResponse, pageQuery, sendPage } from "./pagination.ts";
import { authErrors, errorBody, uuid } from "./schemas.ts";

const problemSummary = z.object({ slug: z.string(), title: z.string(), points: z.number(), type: z.string() });
const setSummary = z
  .object({ slug: z.string(), title: z.string(), revision: z.number().int(), problems: z.array(problemSummary) })
  .meta({ id: "ProblemSetSummary" });
const setParams = z.object({ slug: z.string().max(100) });
const ownerParams = setParams.extend({ userId: uuid });
const owner = z
  .object({ userId: uuid, name: z.string(), email: z.string(), addedById: uuid.nullable(), createdAt: z.date() })
  .meta({ id: "ProblemSetOwner" });

export const problemSetRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/v1/problem-sets",
    {
      schema: {
        tags: ["problem-sets"],
        summary: "The problem sets the caller may read, at their latest revision",
        description:
          "Admins: every set. Course staff: the deployment's sets, sets they own and sets assigned in their courses. " +
          "Students: sets of their courses' assignments that have opened.",
        querystring: z.object(pageQuery),
        response: { 200: pagedResponse(setSummary), ...authErrors },
      },
    },
    async (req, reply) => sendPage(req, reply, req.query, await app.services.problemSets.list(req.principal, req.query)),
  );

  app.get(
    "/v1/problem-sets/:slug",
    {
      schema: {
        tags: ["problem-sets"],
        summary: "A problem set with statements (the caller's own numbers) and answer formats",
        description: "404 unless the caller may read the set (see GET /v1/problem-sets).",
        params: setParams,
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
        description:
          "A new slug makes the uploader its owner. A new revision of an existing slug needs an owner or an admin " +
          "(a set of the deployment's catalog: an admin); anyone else gets 403 `PROBLEM_SET_OWNED` and nothing is stored.",
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

  app.get(
    "/v1/problem-sets/:slug/owners",
    {
      schema: {
        tags: ["problem-sets"],
        summary: "Who may revise a set (its owners, admins)",
        params: setParams,
        querystring: z.object(pageQuery),
        response: { 200: pagedResponse(owner), ...authErrors },
      },
    },
    async (req, reply) =>
      sendPage(req, reply, req.query, await app.services.problemSets.owners.list(req.principal, req.params.slug, req.query)),
  );

  app.put(
    "/v1/problem-sets/:slug/owners/:userId",
    {
      schema: {
        tags: ["problem-sets"],
        summary: "Add a co-owner (an owner, an admin); uploading still needs the instructor role",
        params: ownerParams,
        response: { 200: owner, ...authErrors, 409: errorBody },
      },
    },
    async (req) => app.services.problemSets.owners.add(req.principal, req.params.slug, req.params.userId),
  );

  app.delete(
    "/v1/problem-sets/:slug/owners/:userId",
    {
      schema: {
        tags: ["problem-sets"],
        summary: "Remove an owner (an owner, an admin); the last owner cannot be removed (409 LAST_OWNER)",
        params: ownerParams,
        response: { 204: z.null(), ...authErrors, 409: errorBody },
      },
    },
    async (req, reply) => {
      await app.services.problemSets.owners.remove(req.principal, req.params.slug, req.params.userId);
      return reply.status(204).send(null);
    },
  );
};
