import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { authErrors, errorBody, slug, submissionBody, uuid } from "./schemas.ts";

/** Staff grading: pinned revisions, regrades and their reports, manual overrides and their history, the review queue. */

const score = z.number().finite();
const comment = z.string().max(5000).nullable().optional();
const overrideBody = z.strictObject({ score, comment }).meta({ id: "ScoreOverrideInput" });

const change = z.object({
  userId: uuid,
  name: z.string(),
  /** null: the assignment total. */
  problem: z.string().nullable(),
  old: z.number().nullable(),
  new: z.number().nullable(),
});

const regradeReport = z
  .object({
    id: uuid,
    assignmentId: uuid,
    scope: z.object({
      problem: z.string().nullable(),
      userId: uuid.nullable(),
      submissionId: uuid.nullable(),
      clearOverrides: z.boolean(),
    }),
    status: z.enum(["pending", "running", "done"]),
    total: z.number().int(),
    done: z.number().int(),
    failed: z.number().int(),
    skipped: z.array(z.object({ submissionId: uuid, problem: z.string(), reason: z.string() })),
    startedAt: z.date(),
    finishedAt: z.date().nullable(),
    changes: z.array(change),
  })
  .meta({ id: "RegradeReport" });

const historyEntry = z.object({
  type: z.enum(["auto", "override"]),
  at: z.date(),
  score: z.number(),
  comment: z.string().nullable(),
  run: z.number().int().optional(),
  status: z.string().optional(),
  rawScore: z.number().optional(),
  maxScore: z.number().optional(),
  needsReview: z.boolean().optional(),
  problemRevision: z.number().int().optional(),
  graderVersion: z.string().optional(),
  overrideId: uuid.optional(),
  byId: uuid.nullable().optional(),
  by: z.string().nullable().optional(),
  groupId: z.string().nullable().optional(),
  clearedAt: z.date().nullable().optional(),
  clearedById: uuid.nullable().optional(),
  clearedBy: z.string().nullable().optional(),
});

const reviewGroup = z
  .object({
    groupId: z.string(),
    problem: z.string(),
    representative: z.unknown(),
    size: z.number().int(),
    submissionIds: z.array(uuid),
    students: z.array(z.object({ userId: uuid, name: z.string() })),
  })
  .meta({ id: "ReviewGroup" });

export const gradingStaffRoutes: FastifyPluginAsyncZod = async (app) => {
  const s = () => app.services;

  app.post(
    "/v1/assignments/:assignmentId/revision",
    {
      schema: {
        tags: ["grading"],
        summary: "Move the assignment to a revision of its set (course staff)",
        description:
          "Default: the set's latest revision; 422 `UNKNOWN_REVISION` lists the existing ones. Submissions keep the problem they were " +
          "graded with until regraded. With `regrade`, every submission is regraded against the new revision (`regradeId`).",
        params: z.object({ assignmentId: uuid }),
        body: z.strictObject({
          revision: z.number().int().positive().optional(),
          regrade: z.boolean().optional(),
          clearOverrides: z.boolean().optional(),
        }),
        response: {
          200: z.object({ assignmentId: uuid, revision: z.number().int(), regradeId: uuid.optional() }),
          ...authErrors,
          422: errorBody,
        },
      },
    },
    async (req) => s().regrades.moveRevision(req.principal, req.params.assignmentId, req.body),
  );

  app.post(
    "/v1/assignments/:assignmentId/regrade",
    {
      schema: {
        tags: ["grading"],
        summary: "Regrade a problem, a student or the whole assignment against its pinned revision (course staff)",
        description:
          "202 `{id}`: follow `GET /v1/regrades/{id}`. Nothing to regrade: 200 with the (empty, done) report. " +
          "Overrides stay unless `clearOverrides`.",
        params: z.object({ assignmentId: uuid }),
        // No body at all is the whole assignment.
        body: z.strictObject({ problem: slug.optional(), userId: uuid.optional(), clearOverrides: z.boolean().optional() }).nullish(),
        response: { 200: regradeReport, 202: z.object({ id: uuid }), ...authErrors, 422: errorBody },
      },
    },
    async (req, reply) => {
      const r = await s().regrades.start(req.principal, req.params.assignmentId, req.body ?? {});
      if (r.done) return reply.status(200).send(await s().regrades.report(req.principal, r.id));
      return reply.status(202).send({ id: r.id });
    },
  );

  app.get(
    "/v1/regrades/:id",
    {
      schema: {
        tags: ["grading"],
        summary: "A regrade's progress, then each changed score of record old → new (staff of its course)",
        params: z.object({ id: uuid }),
        response: { 200: regradeReport, ...authErrors },
      },
    },
    async (req) => s().regrades.report(req.principal, req.params.id),
  );

  app.put(
    "/v1/submissions/:id/grade",
    {
      schema: {
        tags: ["grading"],
        summary: "Override a submission's score (course staff); audited, kept in its grade history",
        description: "`score` in [0, the problem's points] (422 `SCORE_OUT_OF_RANGE` otherwise). A regrade keeps it unless asked to clear.",
        params: z.object({ id: uuid }),
        body: overrideBody,
        response: { 200: submissionBody, ...authErrors, 422: errorBody },
      },
    },
    async (req) => s().overrides.set(req.principal, req.params.id, req.body),
  );

  app.delete(
    "/v1/submissions/:id/grade",
    {
      schema: {
        tags: ["grading"],
        summary: "Clear the submission's override: the automatic grade counts again (course staff)",
        params: z.object({ id: uuid }),
        response: { 200: submissionBody, ...authErrors },
      },
    },
    async (req) => s().overrides.clear(req.principal, req.params.id),
  );

  app.get(
    "/v1/submissions/:id/grade-history",
    {
      schema: {
        tags: ["grading"],
        summary: "Every automatic grade run and manual override of a submission, oldest first (course staff)",
        params: z.object({ id: uuid }),
        response: { 200: z.object({ submissionId: uuid, history: z.array(historyEntry) }), ...authErrors },
      },
    },
    async (req) => s().overrides.history(req.principal, req.params.id),
  );

  app.get(
    "/v1/assignments/:assignmentId/review",
    {
      schema: {
        tags: ["grading"],
        summary: "Submissions flagged needsReview and not overridden, grouped by normalised answer (course staff)",
        params: z.object({ assignmentId: uuid }),
        querystring: z.strictObject({ problem: slug.optional() }),
        response: { 200: z.object({ assignmentId: uuid, groups: z.array(reviewGroup) }), ...authErrors },
      },
    },
    async (req) => s().review.groups(req.principal, req.params.assignmentId, req.query.problem),
  );

  app.post(
    "/v1/assignments/:assignmentId/review/groups/:groupId/grade",
    {
      schema: {
        tags: ["grading"],
        summary: "Give every member of a review group the score and comment, in one transaction (course staff)",
        description: "409 `REVIEW_GROUP_CHANGED` with the current groups when the group's members changed since it was read.",
        params: z.object({ assignmentId: uuid, groupId: z.string().regex(/^[0-9a-f]{32}$/) }),
        body: overrideBody,
        response: {
          200: z.object({ graded: z.number().int(), groupId: z.string(), problem: z.string() }),
          ...authErrors,
          409: errorBody,
          422: errorBody,
        },
      },
    },
    async (req) => s().review.gradeGroup(req.principal, req.params.assignmentId, req.params.groupId, req.body),
  );
};
