import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { pagedResponse, pageQuery, sendPage } from "./pagination.ts";
import { authErrors, errorBody, uuid } from "./schemas.ts";

const userBody = z.object({ id: uuid, email: z.string(), name: z.string(), role: z.enum(["admin", "user"]) });

export const userRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    "/v1/users",
    {
      schema: {
        tags: ["users"],
        summary: "Create a user (admin)",
        body: z.strictObject({
          email: z.string().email().max(320),
          name: z.string().trim().min(1).max(200),
          role: z.enum(["admin", "user"]).optional(),
        }),
        response: { 201: userBody, ...authErrors, 409: errorBody },
      },
    },
    async (req, reply) => reply.status(201).send(await app.services.users.create(req.principal, req.body)),
  );

  app.get(
    "/v1/me",
    {
      schema: {
        tags: ["users"],
        summary: "The caller, with the courses they are enrolled in",
        response: {
          200: z.object({
            id: uuid.nullable(),
            email: z.string().nullable(),
            name: z.string(),
            role: z.enum(["admin", "user"]),
            courses: z.array(z.object({ id: uuid, slug: z.string(), title: z.string(), role: z.string() })),
          }),
          ...authErrors,
        },
      },
    },
    async (req) => app.services.users.me(req.principal),
  );

  const userParams = z.object({ userId: uuid });
  app.post(
    "/v1/users/:userId/tokens",
    {
      schema: {
        tags: ["users"],
        summary: "Create a personal API token (admin, or the user); the secret is shown once",
        description: "Tokens expire after `expiresInDays`, by default and at most the server's TOKEN_MAX_DAYS (422 beyond it).",
        params: userParams,
        body: z.strictObject({ name: z.string().trim().min(1).max(100), expiresInDays: z.number().int().min(1).optional() }),
        response: {
          201: z.object({ id: uuid, token: z.string(), name: z.string(), expiresAt: z.date().nullable() }),
          ...authErrors,
          422: errorBody,
        },
      },
    },
    async (req, reply) => reply.status(201).send(await app.services.users.createToken(req.principal, req.params.userId, req.body)),
  );

  app.get(
    "/v1/users/:userId/tokens",
    {
      schema: {
        tags: ["users"],
        summary: "List a user's tokens (never their secrets)",
        params: userParams,
        querystring: z.object(pageQuery),
        response: {
          200: pagedResponse(
            z.object({
              id: uuid,
              name: z.string(),
              kind: z.string(),
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
    async (req, reply) => sendPage(req, reply, req.query, await app.services.users.listTokens(req.principal, req.params.userId, req.query)),
  );

  app.delete(
    "/v1/users/:userId/tokens/:tokenId",
    {
      schema: {
        tags: ["users"],
        summary: "Revoke a token",
        params: z.object({ userId: uuid, tokenId: uuid }),
        response: { 204: z.null(), ...authErrors },
      },
    },
    async (req, reply) => {
      await app.services.users.revokeToken(req.principal, req.params.userId, req.params.tokenId);
      return reply.status(204).send(null);
    },
  );
};
