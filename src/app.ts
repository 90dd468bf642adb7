import helmet from "@fastify/helmet";
import multipart from "@fastify/multipart";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import underPressure from "@fastify/under-pressure";
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { Redis } from "ioredis";
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import type { Config } from "./config.ts";
import type { Db } from "./db.ts";
import { frameworkErrors, installErrorHandling } from "./error-handler.ts";
import { AppError, UnauthorizedError } from "./errors.ts";
import type { GradingQueue } from "./grading/queue.ts";
import { WindowCounter } from "./lib/window-counter.ts";
import { httpDuration, pressureRejections, registerQueueDepth, registerQueueLag } from "./metrics.ts";
import { assignmentRoutes } from "./routes/assignments.ts";
import { courseTokenRoutes } from "./routes/course-tokens.ts";
import { courseRoutes } from "./routes/courses.ts";
import { ltiAdminRoutes } from "./routes/lti-admin.ts";
import { ltiRoutes } from "./routes/lti.ts";
import { gradingStaffRoutes } from "./routes/grading-staff.ts";
import { exportRoutes } from "./routes/exports.ts";
import { ltiServiceRoutes } from "./routes/lti-services.ts";
import { operationRoutes } from "./routes/operations.ts";
import { problemSetRoutes } from "./routes/problem-sets.ts";
import { submissionRoutes } from "./routes/submissions.ts";
import { eventRoutes, queryBearer, redactedRequest } from "./routes/events.ts";
import { installEventHub } from "./routes/long-poll.ts";
import { userRoutes } from "./routes/users.ts";
import { AuthService, type Principal } from "./services/auth.ts";
import { CourseService } from "./services/courses.ts";
import { AssignmentService } from "./services/gradebook/assignments.ts";
import { ExtensionService } from "./services/gradebook/extensions.ts";
import { OverrideService } from "./services/gradebook/overrides.ts";
import { RegradeService } from "./services/gradebook/regrades.ts";
import { ReviewService } from "./services/gradebook/review.ts";
import { ExportService } from "./services/gradebook/exports.ts";
import { ProblemSetService } from "./services/problem-sets.ts";
import { SubmissionService } from "./services/submissions.ts";
import { enforceTokenScope } from "./services/token-scope.ts";
import { UserService } from "./services/users.ts";

export interface AppDeps {
  config: Config;
  db: Db;
  queue: GradingQueue;
}

export type Services = ReturnType<typeof buildServices>;

export function buildServices({ config, db, queue }: AppDeps, log: { warn(obj: object, msg: string): void }) {
  const problemSets = new ProblemSetService(db, config);
  return {
    auth: new AuthService(db, config),
    users: new UserService(db, config),
    courses: new CourseService(db),
    problemSets,
    submissions: new SubmissionService(db, queue, problemSets, config, log),
    assignments: new AssignmentService(db, queue, problemSets, log),
    extensions: new ExtensionService(db, queue, log),
    regrades: new RegradeService(db, queue, log),
    overrides: new OverrideService(db, queue, log),
    review: new ReviewService(db, queue, log),
    exports: new ExportService(db, config.DATABASE_URL),
  };
}

declare module "fastify" {
  interface FastifyInstance {
    config: Config;
    db: Db;
    queue: GradingQueue;
    services: Services;
  }
  interface FastifyRequest {
    principal: Principal;
  }
}

/** One access line per request, when it ends, with its method and URL: Fastify writes two, and a log line is a write. */
class AccessLog extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(error: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    const line = { req, res: reply, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, "request errored");
    else reply.log.info(line, "request completed");
  }
}

/** The HTTP API without listening: main.ts listens, tests use inject(). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    logger: config.LOG_LEVEL === "silent" ? false : { level: config.LOG_LEVEL, serializers: { req: redactedRequest } },
    logController: new AccessLog(),
    bodyLimit: config.BODY_LIMIT_BYTES,
    trustProxy: trustedProxies(config.TRUST_PROXY),
    frameworkErrors,
    // Fastify's own 503 while closing has neither our error shape nor Retry-After: the hook below answers instead.
    return503OnClosing: false,
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);
  // JSON or multipart only: a text/plain body would otherwise reach validation as a string and get a vaguer 400.
  app.removeContentTypeParser("text/plain");

  app.decorate("config", config);
  app.decorate("db", deps.db);
  app.decorate("queue", deps.queue);
  app.decorate("services", buildServices(deps, app.log));
  // Long-polls and event streams: one Redis subscriber per process, waiters released on close.
  installEventHub(app);
  // The exports keep a pg pool of their own (cursors): closed with the app.
  app.addHook("onClose", async () => app.services.exports.close());
  // So does the submit path (src/services/ingest-store.ts).
  app.addHook("onClose", async () => app.services.submissions.close());
  app.decorateRequest("principal", null as unknown as Principal);
  registerQueueDepth(deps.queue);
  registerQueueLag(deps.db);

  app.addHook("onResponse", async (req, reply) => {
    httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? "unknown", status: reply.statusCode },
      reply.elapsedTime / 1000,
    );
  });

  // A request arriving on a kept-alive connection while the API shuts down is told to retry elsewhere, in our shape.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onRequest", async (_req, reply) => {
    if (!closing) return;
    reply.header("retry-after", 1).header("connection", "close");
    throw new AppError(503, "SHUTTING_DOWN", "This server is shutting down; retry in a second with the same Idempotency-Key.", {
      retryAfterSeconds: 1,
    });
  });

  // Security headers on every response; helmet's default CSP suits Swagger UI, which loads no inline script.
  await app.register(helmet);
  await registerBackpressure(app, config);
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Autograder API",
        version: "1.0.0",
        description: "Problem sets, submissions and grades. Every error is `{ error: { code, message, details? } }`.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  await app.register(multipart, { limits: { fileSize: config.BUNDLE_LIMIT_BYTES, files: 1, fields: 10 } });

  await app.register(operationRoutes);
  // LTI: the platform and browsers reach these without a bearer token (signed id_tokens, state and nonce instead).
  await app.register(ltiRoutes);
  await app.register(async (v1) => {
    // Counted in Redis so that every API instance shares the limits; a Redis outage lets requests through.
    const redis = new Redis(config.REDIS_URL, {
      connectTimeout: 500,
      maxRetriesPerRequest: 1,
      lazyConnect: true,
      enableAutoPipelining: true,
    });
    redis.on("error", () => undefined);
    app.addHook("onClose", async () => redis.disconnect());
    const failures = config.AUTH_FAILURES_PER_MIN > 0 ? new WindowCounter(redis, `${config.QUEUE_PREFIX}:auth-failures:`, 60_000) : null;

    // preParsing: before the body is read, so nobody unauthenticated makes us parse an upload. Only failures
    // count against the client address, so a valid token behind a NAT full of guessers still gets in.
    v1.addHook("preParsing", async (req, reply, payload) => {
      try {
        // ?access_token= only on the event stream (EventSource sends no headers): src/routes/events.ts.
        req.principal = await app.services.auth.authenticate(req.headers.authorization ?? queryBearer(req));
      } catch (err) {
        const hit = err instanceof UnauthorizedError && failures ? await failures.hit(req.ip) : null;
        if (hit && hit.count > config.AUTH_FAILURES_PER_MIN) {
          const retryAfter = Math.ceil(hit.resetMs / 1000);
          reply.header("retry-after", retryAfter);
          throw new AppError(
            429,
            "RATE_LIMITED",
            `Too many failed authentications from ${req.ip} (${config.AUTH_FAILURES_PER_MIN} a minute); retry in ${retryAfter} s with a valid token.`,
            { retryAfterSeconds: retryAfter },
          );
        }
        throw err;
      }
      // Course-scoped tokens (LTI sessions, integration tokens): which routes they may call at all.
      enforceTokenScope(req.principal, req.method, req.routeOptions.url);
      return payload;
    });
    if (config.RATE_LIMIT_PER_MIN > 0) {
      // Per token id, after authentication (route-level preParsing hooks run after the one above): a made-up
      // bearer value never reaches this, it fails authentication and counts against its address instead.
      await v1.register(rateLimit, {
        max: config.RATE_LIMIT_PER_MIN,
        timeWindow: 60_000,
        hook: "preParsing",
        redis,
        nameSpace: `${config.QUEUE_PREFIX}:rate-limit:`,
        skipOnError: true,
        keyGenerator: (req) => `token:${req.principal.tokenId ?? "bootstrap"}`,
        errorResponseBuilder: (_req, ctx) =>
          new AppError(429, "RATE_LIMITED", `This token made more than ${ctx.max} requests in a minute; retry in ${ctx.after}.`, {
            retryAfterSeconds: Math.ceil(ctx.ttl / 1000),
          }),
      });
    }
    await v1.register(userRoutes);
    await v1.register(courseRoutes);
    await v1.register(problemSetRoutes);
    await v1.register(submissionRoutes);
    await v1.register(eventRoutes);
    await v1.register(ltiAdminRoutes);
    await v1.register(courseTokenRoutes);
    await v1.register(assignmentRoutes);
    await v1.register(gradingStaffRoutes);
    await v1.register(exportRoutes);
    await v1.register(ltiServiceRoutes);
  });
  return app;
}

/** TRUST_PROXY "10.0.0.1, 10.1.0.0/16" → the proxies whose X-Forwarded-For is believed; none by default. */
function trustedProxies(setting: string): string[] | false {
  const list = setting
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return list.length ? list : false;
}

/** Probes that answer even when the process is loaded: liveness, readiness (dependencies only), and the metrics that show why. */
const UNDER_ANY_PRESSURE = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * Past a threshold (event-loop delay, heap, RSS; sampled every PRESSURE_SAMPLE_MS) the API answers 503 OVERLOADED
 * with Retry-After at once, before any work (before the body is read), instead of letting requests queue up and time out.
 */
async function registerBackpressure(app: FastifyInstance, config: Config) {
  const retryAfter = config.PRESSURE_RETRY_AFTER_S;
  await app.register(underPressure, {
    maxEventLoopDelay: config.PRESSURE_MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes: config.PRESSURE_MAX_HEAP_MB * 1024 * 1024,
    maxRssBytes: config.PRESSURE_MAX_RSS_MB * 1024 * 1024,
    sampleInterval: config.PRESSURE_SAMPLE_MS,
    retryAfter,
    exposeStatusRoute: false,
    pressureHandler: async (req, reply, type, value) => {
      if (UNDER_ANY_PRESSURE.has(req.routeOptions.url ?? "")) return;
      pressureRejections.inc({ reason: type });
      reply.header("retry-after", retryAfter);
      throw new AppError(503, "OVERLOADED", `The server is overloaded (${type}); retry in ${retryAfter} s with the same Idempotency-Key.`, {
        retryAfterSeconds: retryAfter,
        reason: type,
        value: typeof value === "number" ? Math.round(value) : undefined,
      });
    },
  });
}
