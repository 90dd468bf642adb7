import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { CourseTokenService, TOKEN_SCOPES } from "../services/course-tokens.ts";
import { pagedResponse, pageQuery, sendPage } from "./pagination.ts";
import { authErrors, errorBody, uuid } from "./schemas.ts";

const params = z.object({ courseId: uuid });
const tags = ["courses"];

export const courseTokenRoutes: FastifyPluginAsyncZod = async (app) => {
  const tokens = new CourseTokenService(app.db, app.config);

  app.post(
    "/v1/courses/:courseId/tokens",
    {
      schema: {
        tags,
        summary: "Make a course-scoped token for an LMS or a script (instructor, admin); the secret is shown once",
        description:
          "`grades:read`: GET of this course's grades, statistics, enrollments and assignments only (403 TOKEN_SCOPE otherwise).",
        params,
        body: z.strictObject({
          name: z.string().trim().min(1).max(100),
          scope: z.enum(TOKEN_SCOPES),
          expiresInDays: z.number().int().min(1).optional(),
        }),
        response: {
          201: z.object({
            id: uuid,
            token: z.string(),
            name: z.string(),
            scope: z.enum(TOKEN_SCOPES),
            courseId: uuid,
            expiresAt: z.date(),
          }),
          ...authErrors,
          422: errorBody,
        },
      },
    },
    async (req, reply) => reply.status(201).send(await tokens.create(req.principal, req.params.courseId, req.body)),
  );

  app.get(
    "/v1/courses/:courseId/tokens",
    {
      schema: {
        tags,
        summary: "List the course's integration tokens, never their secrets (instructor, admin)",
        params,
        querystring: z.object(pageQuery),
        response: {
          200: pagedResponse(
            z.object({
              id: uuid,
              name: z.string(),
              scope: z.string().nullable(),
              userId: uuid,
              createdAt: z.date(),
              expiresAt: z.date().nullable(),
              revokedAt: z.date().nullable(),
              lastUsedAt: z.date().nullable(),
            }),
          ),
          ...authErrors,
        },
      },
    },
    async (req, reply) => sendPage(req, reply, req.query, await tokens.list(req.principal, req.params.courseId, req.query)),
  );

  app.delete(
    "/v1/courses/:courseId/tokens/:tokenId",
    {
      schema: {
        tags,
        summary: "Revoke a course's integration token (instructor, admin)",
        params: params.extend({ tokenId: uuid }),
        response: { 204: z.null(), ...authErrors },
      },
    },
    async (req, reply) => {
      await tokens.revoke(req.principal, req.params.courseId, req.params.tokenId);
      return reply.status(204).send(null);
    },
  );
};
