import multipart from "@fastify/multipart";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyInstance } from "fastify";
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
import { installErrorHandling } from "./error-handler.ts";
import type { GradingQueue } from "./grading/queue.ts";
import { sha256 } from "./lib/crypto.ts";
import { httpDuration, registerQueueDepth } from "./metrics.ts";
import { courseRoutes } from "./routes/courses.ts";
import { operationRoutes } from "./routes/operations.ts";
import { problemSetRoutes } from "./routes/problem-sets.ts";
import { submissionRoutes } from "./routes/submissions.ts";
import { userRoutes } from "./routes/users.ts";
import { AuthService, type Principal } from "./services/auth.ts";
import { CourseService } from "./services/courses.ts";
import { ProblemSetService } from "./services/problem-sets.ts";
import { SubmissionService } from "./services/submissions.ts";
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
    users: new UserService(db),
    courses: new CourseService(db),
    problemSets,
    submissions: new SubmissionService(db, queue, problemSets, config, log),
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

/** The HTTP API without listening: main.ts listens, tests use inject(). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    logger: config.LOG_LEVEL === "silent" ? false : { level: config.LOG_LEVEL },
    bodyLimit: config.BODY_LIMIT_BYTES,
    trustProxy: true,
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
  app.decorateRequest("principal", null as unknown as Principal);
  registerQueueDepth(deps.queue);

  app.addHook("onResponse", async (req, reply) => {
    httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? "unknown", status: reply.statusCode },
      reply.elapsedTime / 1000,
    );
  });

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
  await app.register(async (v1) => {
    if (config.RATE_LIMIT_PER_MIN > 0) {
      // Counted in Redis so that every API instance shares one limit; a Redis outage lets requests through.
      const redis = new Redis(config.REDIS_URL, { connectTimeout: 500, maxRetriesPerRequest: 1, lazyConnect: true });
      redis.on("error", () => undefined);
      app.addHook("onClose", async () => redis.disconnect());
      await v1.register(rateLimit, {
        max: config.RATE_LIMIT_PER_MIN,
        timeWindow: 60_000,
        redis,
        nameSpace: `${config.QUEUE_PREFIX}:rate-limit:`,
        skipOnError: true,
        keyGenerator: (req) => (req.headers.authorization ? sha256(req.headers.authorization) : req.ip),
      });
    }
    // preParsing: after the rate limit (a route-level onRequest hook), so token guessing is limited too,
    // and before the body is read, so nobody unauthenticated makes us parse an upload.
    v1.addHook("preParsing", async (req, _reply, payload) => {
      req.principal = await app.services.auth.authenticate(req.headers.authorization);
      return payload;
    });
    await v1.register(userRoutes);
    await v1.register(courseRoutes);
    await v1.register(problemSetRoutes);
    await v1.register(submissionRoutes);
  });
  return app;
}
