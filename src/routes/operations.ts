import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { UnauthorizedError } from "../errors.ts";
import { metricsAuthorized, registry } from "../metrics.ts";

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timeout")), ms).unref())]);

export const operationRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/healthz",
    { schema: { tags: ["operations"], summary: "The process is up", response: { 200: z.object({ status: z.literal("ok") }) } } },
    async () => ({ status: "ok" as const }),
  );

  const check = z.enum(["ok", "down"]);
  app.get(
    "/readyz",
    {
      schema: {
        tags: ["operations"],
        summary: "Postgres and Redis are reachable (503 otherwise)",
        response: { 200: z.object({ postgres: check, redis: check }), 503: z.object({ postgres: check, redis: check }) },
      },
    },
    async (_req, reply) => {
      const [pg, redis] = await Promise.allSettled([withTimeout(app.db.$queryRaw`SELECT 1`, 2000), withTimeout(app.queue.count(), 2000)]);
      const body = { postgres: pg.status === "fulfilled" ? "ok" : "down", redis: redis.status === "fulfilled" ? "ok" : "down" } as const;
      return reply.status(body.postgres === "ok" && body.redis === "ok" ? 200 : 503).send(body);
    },
  );

  app.get(
    "/metrics",
    {
      schema: {
        tags: ["operations"],
        summary: "Prometheus metrics (text format); needs `Authorization: Bearer <METRICS_TOKEN>` when the server sets one",
      },
    },
    async (req, reply) => {
      if (!metricsAuthorized(app.config.METRICS_TOKEN, req.headers.authorization))
        throw new UnauthorizedError("METRICS_TOKEN_REQUIRED", "Send `Authorization: Bearer <METRICS_TOKEN>` to read /metrics.");
      return reply.type(registry.contentType).send(await registry.metrics());
    },
  );

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
};
