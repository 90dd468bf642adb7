import SwaggerParser from "@apidevtools/swagger-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./helpers/harness.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness("operations");
});
afterAll(() => h?.close());

describe("operations", () => {
  it("healthz and readyz answer without a token", async () => {
    expect((await h.call("GET", "/healthz")).json()).toEqual({ status: "ok" });
    const ready = await h.call("GET", "/readyz");
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ postgres: "ok", redis: "ok" });
  });

  it("metrics expose queue depth and grading-time histograms in Prometheus text", async () => {
    const res = await h.call("GET", "/metrics");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/plain/);
    expect(res.body).toMatch(/^autograder_grading_queue_jobs\{state="waiting"\} \d+$/m);
    expect(res.body).toContain("# TYPE autograder_grading_duration_seconds histogram");
    expect(res.body).toContain("# TYPE autograder_http_request_duration_seconds histogram");
  });

  it("/openapi.json is a valid OpenAPI 3 document listing every route with its schemas", async () => {
    const doc = (await h.call("GET", "/openapi.json")).json();
    expect(doc.openapi).toMatch(/^3\./);
    await SwaggerParser.validate(structuredClone(doc));
    const paths = Object.keys(doc.paths);
    for (const p of [
      "/v1/users",
      "/v1/users/{userId}/tokens",
      "/v1/courses",
      "/v1/courses/{courseId}/enrollments/{userId}",
      "/v1/courses/{courseId}/assignments",
      "/v1/problem-sets",
      "/v1/problem-sets/{slug}",
      "/v1/assignments/{assignmentId}/problems/{problemSlug}/submissions",
      "/v1/submissions/{id}",
      "/v1/assignments/{assignmentId}/submissions",
      "/v1/submissions/{id}/regrade",
      "/healthz",
      "/readyz",
      "/metrics",
    ])
      expect(paths).toContain(p);
    const submit = doc.paths["/v1/assignments/{assignmentId}/problems/{problemSlug}/submissions"].post;
    expect(submit.requestBody.content["application/json"].schema.properties).toHaveProperty("answer");
    expect(Object.keys(submit.responses)).toEqual(expect.arrayContaining(["202", "401", "404", "409"]));
  });

  it("/docs serves Swagger UI", async () => {
    const res = await h.call("GET", "/docs/");
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/swagger-ui/i);
  });
});

describe("when a dependency is down", () => {
  it("requests get 503 DEPENDENCY_UNAVAILABLE and /readyz says which", async () => {
    const { buildApp } = await import("../src/app.ts");
    const { createDb } = await import("../src/db.ts");
    const db = createDb("postgresql://postgres@127.0.0.1:1/nowhere");
    const app = await buildApp({ config: { ...h.config }, db, queue: h.queue });
    try {
      const res = await app.inject({ method: "GET", url: "/v1/me", headers: { authorization: "Bearer agt_x" } });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toMatchObject({ code: "DEPENDENCY_UNAVAILABLE", details: { dependency: "postgres" } });
      const ready = await app.inject({ method: "GET", url: "/readyz" });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ postgres: "down", redis: "ok" });
    } finally {
      await app.close();
      await db.$disconnect();
    }
  });
});
