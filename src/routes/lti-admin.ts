import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { desc, pageOf } from "../lib/keyset.ts";
import { listKeys, rotateKeys } from "../lti/keys.ts";
import { PlatformService } from "../lti/platforms.ts";
import { requireAdmin } from "../services/access.ts";
import { pagedResponse, pageQuery, sendPage } from "./pagination.ts";
import { authErrors, errorBody, uuid } from "./schemas.ts";

/** Admin API of the LTI tool: the platforms allowed to launch it, and the tool's signing keys. */
const KEY_ORDER = [desc("createdAt", "date"), desc("kid")];

const platformBody = z
  .object({
    id: uuid,
    issuer: z.string(),
    clientId: z.string(),
    deploymentIds: z.array(z.string()),
    authLoginUrl: z.string(),
    authTokenUrl: z.string(),
    jwksUrl: z.string(),
    name: z.string().nullable(),
    registeredBy: z.string(),
    createdAt: z.date(),
    disabledAt: z.date().nullable(),
  })
  .meta({ id: "LtiPlatform" });

const url = z.string().trim().min(1).max(2000);
const deploymentIds = z.array(z.string().trim().min(1).max(255)).max(100);
const tags = ["lti"];

export const ltiAdminRoutes: FastifyPluginAsyncZod = async (app) => {
  const platforms = new PlatformService(app.db, app.config);

  app.post(
    "/v1/lti/platforms",
    {
      schema: {
        tags,
        summary: "Register an LMS (platform) that may launch the tool (admin)",
        description: "URLs must be https (http only for localhost, or when NODE_ENV is not production): 422 names each bad field.",
        body: z.strictObject({
          issuer: url,
          clientId: z.string().trim().min(1).max(255),
          deploymentIds,
          authLoginUrl: url,
          authTokenUrl: url,
          jwksUrl: url,
          name: z.string().trim().min(1).max(200).optional(),
        }),
        response: { 201: platformBody, ...authErrors, 409: errorBody, 422: errorBody },
      },
    },
    async (req, reply) => reply.status(201).send(await platforms.register(req.principal, req.body)),
  );

  app.get(
    "/v1/lti/platforms",
    {
      schema: {
        tags,
        summary: "List the registered platforms (admin)",
        querystring: z.object(pageQuery),
        response: { 200: pagedResponse(platformBody), ...authErrors },
      },
    },
    async (req, reply) => sendPage(req, reply, req.query, await platforms.list(req.principal, req.query)),
  );

  const params = z.object({ platformId: uuid });
  app.patch(
    "/v1/lti/platforms/:platformId",
    {
      schema: {
        tags,
        summary: "Change a platform's deployments or endpoints, or enable it again (admin)",
        params,
        body: z.strictObject({
          deploymentIds: deploymentIds.optional(),
          authLoginUrl: url.optional(),
          authTokenUrl: url.optional(),
          jwksUrl: url.optional(),
          name: z.string().trim().min(1).max(200).optional(),
          enabled: z.boolean().optional(),
        }),
        response: { 200: platformBody, ...authErrors, 422: errorBody },
      },
    },
    async (req) => platforms.update(req.principal, req.params.platformId, req.body),
  );

  app.delete(
    "/v1/lti/platforms/:platformId",
    {
      schema: {
        tags,
        summary: "Disable a platform: its launches are refused; its users, courses and links stay (admin)",
        params,
        response: { 204: z.null(), ...authErrors },
      },
    },
    async (req, reply) => {
      await platforms.disable(req.principal, req.params.platformId);
      return reply.status(204).send(null);
    },
  );

  app.get(
    "/v1/lti/keys",
    {
      schema: {
        tags,
        summary: "The tool's signing keys and their state: signing, published (grace period) or retired (admin)",
        querystring: z.object(pageQuery),
        response: {
          200: pagedResponse(
            z.object({
              kid: z.string(),
              createdAt: z.date(),
              retiredAt: z.date().nullable(),
              status: z.enum(["signing", "published", "retired"]),
            }),
          ),
          ...authErrors,
        },
      },
    },
    async (req, reply) => {
      requireAdmin(req.principal);
      // A handful of rows, and which one signs is decided over all of them: paged after computing.
      return sendPage(req, reply, req.query, pageOf(await listKeys(app.db), KEY_ORDER, req.query));
    },
  );

  app.post(
    "/v1/lti/keys/rotate",
    {
      schema: {
        tags,
        summary: "Rotate the tool's signing key (admin): the new key signs now, the old one stays in the JWKS for graceHours",
        body: z
          .strictObject({
            graceHours: z
              .number()
              .min(0)
              .max(24 * 90)
              .optional(),
          })
          .optional(),
        response: {
          201: z.object({ kid: z.string(), retiring: z.array(z.object({ kid: z.string(), retiredAt: z.date() })) }),
          ...authErrors,
        },
      },
    },
    async (req, reply) => {
      requireAdmin(req.principal);
      return reply.status(201).send(await rotateKeys(app.db, req.body?.graceHours ?? 24, req.principal.userId));
    },
  );
};
