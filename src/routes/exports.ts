import type { FastifyReply } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { EXPORT_FORMATS, type ExportResult } from "../services/gradebook/exports.ts";
import { authErrors, uuid } from "./schemas.ts";

const formatError = (formats: readonly string[]) => ({ error: () => `unknown format; use one of: ${formats.join(", ")}` });

const bin = z.object({ from: z.number(), to: z.number(), count: z.number().int() });
const distribution = {
  n: z.number().int().meta({ description: "students with a score of record" }),
  mean: z.number().nullable(),
  median: z.number().nullable(),
  histogram: z.array(bin).meta({ description: "10 equal bins over [0, max]; the last includes max" }),
};
const statisticsBody = z
  .object({
    course: z.object({ id: uuid, slug: z.string(), title: z.string() }),
    generatedAt: z.date(),
    students: z.number().int(),
    assignments: z.array(
      z.object({
        assignmentId: uuid,
        title: z.string(),
        maxTotal: z.number(),
        total: z.object(distribution),
        problems: z.array(
          z.object({
            problem: z.string(),
            title: z.string(),
            type: z.string(),
            maxScore: z.number(),
            ...distribution,
            attempts: z.object({ students: z.number().int(), mean: z.number().nullable(), max: z.number().int() }),
            wrongChoices: z
              .array(z.object({ option: z.string(), count: z.number().int() }))
              .meta({ description: "choice problems: option ids selected in submissions below full marks" }),
            feedback: z
              .array(z.object({ message: z.string(), count: z.number().int() }))
              .meta({ description: "the 5 most common feedback messages of grades below full marks" }),
          }),
        ),
      }),
    ),
  })
  .meta({ id: "CourseStatistics" });

function sendExport(reply: FastifyReply, out: ExportResult) {
  reply.header("content-type", out.contentType).header("content-disposition", out.disposition).header("cache-control", "no-store");
  if (out.csp) reply.header("content-security-policy", out.csp);
  return reply.send(out.body);
}

export const exportRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/v1/courses/:courseId/grades",
    {
      schema: {
        tags: ["grades"],
        summary: "Export the course's scores of record (course staff, admin)",
        description:
          "Streamed. `json`: an array, one object per student with each assignment's problems (score of record, max, counted " +
          "submission, raw score, late factor, penalty, override). `csv`: one row per (student, problem). `canvas`: Canvas's " +
          "gradebook import (Student, ID, SIS User ID, SIS Login ID, Section, one `Title (id)` column per assignment, a Points " +
          "Possible row, blank for no score). `moodle`: Moodle's CSV grade import (First name, Last name, Email address, one " +
          "`Title (Real)` column per assignment, `-` for no grade). `html`: the statistics report. Text cells starting with " +
          "=, +, -, @, tab or CR are prefixed with ' (CSV injection).",
        params: z.object({ courseId: uuid }),
        querystring: z.object({ format: z.enum(EXPORT_FORMATS, formatError(EXPORT_FORMATS)).default("json"), assignment: uuid.optional() }),
        response: { 200: z.unknown().meta({ description: "the export file, streamed" }), ...authErrors },
      },
    },
    async (req, reply) => {
      const out = await app.services.exports.export(req.principal, req.params.courseId, req.query.format, {
        assignmentId: req.query.assignment,
      });
      return sendExport(reply, out);
    },
  );

  app.get(
    "/v1/courses/:courseId/statistics",
    {
      schema: {
        tags: ["grades"],
        summary: "Per assignment and problem: scores (mean, median, histogram), attempts, common wrong choices and feedback (staff)",
        description: "`format=html` answers the same as a self-contained HTML page (as `grades?format=html`).",
        params: z.object({ courseId: uuid }),
        querystring: z.object({
          format: z.enum(["json", "html"], formatError(["json", "html"])).default("json"),
          assignment: uuid.optional(),
        }),
        response: { 200: statisticsBody, ...authErrors },
      },
    },
    async (req, reply) => {
      const opts = { assignmentId: req.query.assignment };
      if (req.query.format === "html")
        return sendExport(reply, await app.services.exports.export(req.principal, req.params.courseId, "html", opts));
      return app.services.exports.statistics(req.principal, req.params.courseId, opts);
    },
  );
};
