import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { EventHub, TooManyListeners } from "../lib/event-hub.ts";

/**
 * `GET /v1/submissions/{id}?wait=N`: instead of polling, a client waits up to N seconds (0–60) for the submission to
 * leave queued/running, and gets the same body as without `wait`. Woken by the hub's Redis pub/sub (one subscriber
 * connection per API process), with a re-read after subscribing so no change is lost in between, a slow re-read as a
 * safety net (an event lost while Redis reconnected), a bound on waiters, and prompt answers on disconnect or shutdown.
 */

export const MAX_WAIT_SECONDS = 60;
/** Waiters (long-polls and event streams) one API process holds at most; past it, long-polls answer at once. */
export const MAX_LISTENERS = 10_000;
/** How often a waiter re-reads Postgres anyway: while subscribed, and while Redis is unreachable. */
const RECHECK_MS = 5000;
const RECHECK_WITHOUT_REDIS_MS = 1000;

declare module "fastify" {
  interface FastifyInstance {
    events: EventHub;
  }
}

/** One hub per app; closed before the server waits for in-flight requests, so waiters answer at once. */
export function installEventHub(app: FastifyInstance): void {
  const hub = new EventHub(app.config.REDIS_URL, app.config.QUEUE_PREFIX, MAX_LISTENERS);
  app.decorate("events", hub);
  app.addHook("preClose", async () => hub.close());
}

const pending = (status: string) => status === "queued" || status === "running";

export async function longPoll<B extends { status: string; assignmentId: string }>(
  app: FastifyInstance,
  req: FastifyRequest,
  reply: FastifyReply,
  waitSeconds: number | undefined,
  read: () => Promise<B>,
): Promise<B> {
  // The first read also applies the visibility rules: another student's submission is 404 before any waiting.
  let body = await read();
  if (!waitSeconds || !pending(body.status)) return body;
  const deadline = Date.now() + waitSeconds * 1000;
  const id = (body as unknown as { id: string }).id;

  let wake: () => void = () => undefined;
  let woken = new Promise<void>((r) => (wake = r));
  let gone = false;
  const onGone = () => {
    gone = true;
    wake();
  };
  reply.raw.once("close", onGone);
  let stop: (() => void) | null = null;
  try {
    stop = await app.events.listen(body.assignmentId, (e) => e.type === "submission" && e.id === id && wake(), onGone);
  } catch (err) {
    if (err instanceof TooManyListeners) return body;
    // Redis unreachable: wait by re-reading Postgres instead (slower to notice, never wrong).
    req.log.warn({ err }, "long-poll without pub/sub: re-reading instead");
  }
  try {
    for (;;) {
      body = await read(); // after subscribing: a change committed before the subscription is seen here
      const left = deadline - Date.now();
      if (!pending(body.status) || left <= 0 || gone) return body;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        woken,
        new Promise<void>((r) => (timer = setTimeout(r, Math.min(left, stop ? RECHECK_MS : RECHECK_WITHOUT_REDIS_MS)))),
      ]);
      clearTimeout(timer);
      woken = new Promise<void>((r) => (wake = r));
      if (gone) return body;
    }
  } finally {
    stop?.();
    reply.raw.off("close", onGone);
  }
}
