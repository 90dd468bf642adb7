import type { FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Db } from "../db.ts";
import { AppError, NotFoundError } from "../errors.ts";
import { TooManyListeners, type HubEvent } from "../lib/event-hub.ts";
import { isStaff, memberRole } from "../services/access.ts";
import { authErrors, errorBody, uuid } from "./schemas.ts";

/**
 * `GET /v1/assignments/{id}/events`: Server-Sent Events of an assignment, fed by Redis pub/sub (src/lib/event-hub.ts)
 * so any API instance serves any client whichever worker graded. Staff get every submission's events, a student only
 * their own. Events are hints to re-read, not a log: `Last-Event-ID` is not supported; after a reconnect a client
 * catches up with GET …/submissions or …/grades.
 */

export const EVENTS_ROUTE = "/v1/assignments/:assignmentId/events";
const HEARTBEAT_MS = 15_000;

/**
 * EventSource cannot set headers, so this route (and only this one) also takes the token as `?access_token=`.
 * The trade-off: a URL can end up in proxy logs and browser history, so prefer the header where the client can
 * (fetch-based SSE clients), and use a short-lived token (an LTI session) in a browser.
 */
export function queryBearer(req: FastifyRequest): string | undefined {
  if (req.routeOptions.url !== EVENTS_ROUTE) return undefined;
  const token = (req.query as { access_token?: unknown } | undefined)?.access_token;
  return typeof token === "string" && token ? `Bearer ${token}` : undefined;
}

/** Request logs without the token a `?access_token=` URL carries (Fastify's default request fields otherwise). */
export const redactedRequest = (req: { method: string; url: string; host?: string; ip?: string }) => ({
  method: req.method,
  url: req.url.replace(/([?&]access_token=)[^&]*/g, "$1[redacted]"),
  host: req.host,
  remoteAddress: req.ip,
});

/** What a `submission` event says, read once per event in this process however many streams send it. */
const details = new WeakMap<HubEvent, Promise<Record<string, unknown> | null>>();
function submissionDetails(db: Db, e: Extract<HubEvent, { type: "submission" }>) {
  let d = details.get(e);
  if (!d) {
    d = db.submission
      .findUnique({
        where: { id: e.id },
        select: {
          id: true,
          problemSlug: true,
          userId: true,
          grades: { orderBy: [{ run: "desc" }, { createdAt: "desc" }], take: 1, select: { score: true, maxScore: true } },
          overrides: { where: { clearedAt: null }, orderBy: [{ createdAt: "desc" }, { id: "desc" }], take: 1, select: { score: true } },
        },
      })
      .then((s) => {
        if (!s) return null;
        const grade = s.grades[0];
        // The score GET /v1/submissions/{id} shows: an override while it stands, else the current run's.
        // The status the change announced (events arrive in order; the row may have moved on since).
        const finished = e.status !== "queued" && e.status !== "running";
        const score = finished ? (s.overrides[0]?.score ?? grade?.score) : undefined;
        return {
          id: s.id,
          status: e.status,
          problem: s.problemSlug,
          userId: s.userId,
          ...(score !== undefined ? { score, maxScore: grade?.maxScore ?? null } : {}),
        };
      })
      .catch(() => null);
    details.set(e, d);
  }
  return d;
}

const frame = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

export const eventRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    EVENTS_ROUTE,
    {
      schema: {
        tags: ["submissions"],
        summary: "Server-Sent Events of an assignment's submissions and grades (course members: staff all, a student their own)",
        description:
          "`text/event-stream`. `event: submission` with `{id, status, problem, userId, score?, maxScore?}` when a submission's status " +
          "changes; `event: grade` with `{assignmentId, userId}` when a student's score of record may have changed; a comment line " +
          "every 15 s as a heartbeat. `Last-Event-ID` is not supported: after a reconnect, re-read the submissions list. " +
          "EventSource cannot send headers, so this route also accepts the token as `?access_token=` (it may end up in logs and " +
          "history: prefer the Authorization header, or a short-lived token).",
        params: z.object({ assignmentId: uuid }),
        querystring: z.object({
          access_token: z.string().max(500).optional().meta({ description: "The token, for EventSource (which sends no headers)" }),
          duration: z.coerce
            .number()
            .min(0.1)
            .max(86_400)
            .optional()
            .meta({ description: "Seconds after which the server ends the stream (scripts); default: until the client leaves" }),
        }),
        response: {
          200: z.string().meta({ description: "text/event-stream" }),
          ...authErrors,
          503: errorBody,
        },
      },
    },
    async (req, reply) => {
      const p = req.principal;
      const assignment = await app.db.assignment.findUnique({
        where: { id: req.params.assignmentId },
        select: { id: true, courseId: true },
      });
      const role = assignment ? await memberRole(app.db, p, assignment.courseId) : null;
      if (!assignment || !role) throw new NotFoundError("Assignment", req.params.assignmentId);
      const staff = isStaff(role);
      const mine = (userId: string) => staff || userId === p.userId;

      const raw = reply.raw;
      let open = true;
      const send = (text: string) => open && raw.write(text);
      const end = () => {
        if (!open) return;
        open = false;
        raw.end();
      };
      let stop: () => void;
      try {
        stop = await app.events.listen(
          assignment.id,
          (e) => {
            if (e.type === "grade") {
              for (const userId of e.userIds) if (mine(userId)) send(frame("grade", { assignmentId: e.assignmentId, userId }));
            } else if (mine(e.userId)) {
              void submissionDetails(app.db, e).then((d) => d && send(frame("submission", d)));
            }
          },
          end,
        );
      } catch (err) {
        if (err instanceof TooManyListeners)
          throw new AppError(503, "TOO_MANY_LISTENERS", "This server holds as many event streams as it may; retry shortly.", {
            retryAfterSeconds: 5,
          });
        throw err;
      }
      reply.hijack();
      raw.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      send(`retry: 3000\n: subscribed to ${assignment.id}\n\n`);
      const heartbeat = setInterval(() => send(": heartbeat\n\n"), HEARTBEAT_MS);
      const limit = req.query.duration ? setTimeout(end, req.query.duration * 1000) : undefined;
      raw.once("close", () => {
        open = false;
        clearInterval(heartbeat);
        clearTimeout(limit);
        stop();
      });
    },
  );
};
