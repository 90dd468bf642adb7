import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { respondToDeepLink } from "../lti/deep-link.ts";
import { registerDynamically } from "../lti/dynamic-registration.ts";
import { sendAutoPostForm, sendLtiError, sendRegistrationDone, wantsJson } from "../lti/html.ts";
import { publicJwks } from "../lti/keys.ts";
import { validateLaunch } from "../lti/launch.ts";
import { initiateLogin } from "../lti/login.ts";
import { requestRosterSync } from "../lti/nrps.ts";
import { DEFAULT_JWKS_OPTIONS, PlatformKeySets } from "../lti/platform-jwks.ts";
import { PlatformService } from "../lti/platforms.ts";
import { provisionLaunch } from "../lti/provision.ts";
import { clearStateCookie, landingUrl, setStateCookie, stateCookies } from "../lti/session.ts";
import { canvasConfiguration } from "../lti/tool-config.ts";
import { errorBody, slug, uuid } from "./schemas.ts";

/**
 * The LTI 1.3 endpoints the platform and browsers reach: outside /v1 and without a bearer token (the platform's
 * signature, the state and the nonce authenticate a launch). Refusals answer a page naming the failed check, or
 * our JSON error shape with `Accept: application/json`.
 */
const text = z.string().max(8192).optional();
const loginParams = z.looseObject({
  iss: text,
  login_hint: text,
  target_link_uri: text,
  lti_message_hint: text,
  client_id: text,
  lti_deployment_id: text,
});
const ltiErrors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody, 422: errorBody, 502: errorBody };
const tags = ["lti"];

export const ltiRoutes: FastifyPluginAsyncZod = async (app) => {
  // LMSs post forms (login initiation, launch); only these routes take them.
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  const keySets = new PlatformKeySets({ ...DEFAULT_JWKS_OPTIONS, cooldownMs: app.config.LTI_JWKS_COOLDOWN_S * 1000 });
  const platforms = new PlatformService(app.db, app.config);

  app.get(
    "/lti/jwks.json",
    {
      schema: {
        tags,
        summary: "The tool's public keys (JWKS): platforms verify deep-linking responses and client assertions with them",
        security: [],
      },
    },
    async (_req, reply) => reply.header("cache-control", "public, max-age=300").send(await publicJwks(app.db)),
  );

  app.get(
    "/lti/config.json",
    { schema: { tags, summary: "Tool configuration JSON for Canvas (developer key → LTI key → Paste JSON or Enter URL)", security: [] } },
    async () => canvasConfiguration(app.config),
  );

  const login = async (
    params: z.infer<typeof loginParams>,
    req: Parameters<typeof sendLtiError>[0],
    reply: Parameters<typeof sendLtiError>[1],
  ) => {
    try {
      const { redirect, state } = await initiateLogin(app.db, app.config, params);
      setStateCookie(reply, state);
      return reply.redirect(redirect, 302);
    } catch (e) {
      return sendLtiError(req, reply, e);
    }
  };
  const loginSchema = { tags, summary: "OIDC third-party login initiation → 302 to the platform's authorization endpoint", security: [] };
  app.get("/lti/login", { schema: { ...loginSchema, querystring: loginParams, response: ltiErrors } }, (req, reply) =>
    login(req.query, req, reply),
  );
  app.post("/lti/login", { schema: { ...loginSchema, body: loginParams, response: ltiErrors } }, (req, reply) =>
    login(req.body, req, reply),
  );

  app.post(
    "/lti/launch",
    {
      schema: {
        tags,
        summary: "The platform's form post (id_token, state): validated, then a course-scoped session token",
        description:
          "`Accept: application/json` → 200 `{token, userId, courseId, assignmentId?, deepLinking?}`; a browser → 302 to the landing URL " +
          "with `#token=…&courseId=…`. A refusal names the failed check (LTI_BAD_SIGNATURE, LTI_NONCE_REPLAYED, …) and creates nothing.",
        security: [],
        body: z.looseObject({ id_token: z.string().max(65536).optional(), state: text, error: text, error_description: text }),
        response: {
          200: z.object({
            token: z.string(),
            userId: uuid,
            courseId: uuid,
            role: z.enum(["student", "ta", "instructor"]),
            expiresAt: z.date(),
            assignmentId: uuid.optional(),
            deepLinking: z.boolean().optional(),
          }),
          ...ltiErrors,
        },
      },
    },
    async (req, reply) => {
      try {
        const launch = await validateLaunch(app.db, keySets, req.body, stateCookies(req));
        const result = await provisionLaunch(app.db, app.config, launch);
        if (req.body.state) clearStateCookie(reply, req.body.state);
        req.log.info({ platformId: launch.platform.id, userId: result.userId, courseId: result.courseId, role: result.role }, "LTI launch");
        // An instructor's launch brings the roster (L2's NRPS job), so the gradebook shows students before they submit.
        // The launch itself must not fail on it: the sweep of the job registry recovers a sync that could not be queued.
        if (result.role === "instructor")
          await requestRosterSync({ db: app.db, queue: app.queue }, result.contextRowId).catch((e: unknown) =>
            req.log.warn({ err: e, contextRowId: result.contextRowId }, "roster sync after an instructor's launch not queued"),
          );
        if (!wantsJson(req)) return reply.redirect(landingUrl(app.config, result), 302);
        return {
          token: result.token,
          userId: result.userId,
          courseId: result.courseId,
          role: result.role,
          expiresAt: result.expiresAt,
          ...(result.assignmentId ? { assignmentId: result.assignmentId } : {}),
          ...(result.deepLinking ? { deepLinking: true } : {}),
        };
      } catch (e) {
        return sendLtiError(req, reply, e);
      }
    },
  );

  app.post(
    "/lti/deep-link",
    {
      schema: {
        tags,
        summary: "Deep linking: make the assignment and return it to the platform (Bearer: a deep-linking launch's session token)",
        description:
          "Answers the auto-posting form to the platform's deep_link_return_url carrying the signed `JWT`; with `Accept: application/json` → `{returnUrl, jwt}`.",
        body: z.strictObject({ problemSet: slug, problem: slug.optional(), title: z.string().trim().min(1).max(200).optional() }),
        response: { 200: z.object({ returnUrl: z.string(), jwt: z.string(), assignmentId: uuid }), ...ltiErrors },
      },
    },
    async (req, reply) => {
      try {
        const principal = await app.services.auth.authenticate(req.headers.authorization);
        const out = await respondToDeepLink({ db: app.db, config: app.config, courses: app.services.courses }, principal, req.body);
        if (wantsJson(req)) return out;
        return sendAutoPostForm(reply, out.returnUrl, { JWT: out.jwt });
      } catch (e) {
        return sendLtiError(req, reply, e);
      }
    },
  );

  app.get(
    "/lti/register",
    {
      schema: {
        tags,
        summary: "LTI Dynamic Registration: the LMS opens this with ?openid_configuration=…&registration_token=…",
        security: [],
        querystring: z.looseObject({ openid_configuration: text, registration_token: text }),
        response: {
          200: z.object({ id: uuid, issuer: z.string(), clientId: z.string(), deploymentIds: z.array(z.string()) }),
          ...ltiErrors,
        },
      },
    },
    async (req, reply) => {
      try {
        const { platform } = await registerDynamically(app.config, req.query);
        const row = await platforms.create(null, platform, "dynamic");
        req.log.info({ platformId: row.id, issuer: row.issuer, clientId: row.clientId }, "LTI platform registered dynamically");
        if (wantsJson(req)) return { id: row.id, issuer: row.issuer, clientId: row.clientId, deploymentIds: row.deploymentIds };
        return sendRegistrationDone(reply, row.name ?? row.issuer);
      } catch (e) {
        return sendLtiError(req, reply, e);
      }
    },
  );
};
