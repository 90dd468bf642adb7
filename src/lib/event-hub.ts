import { Redis } from "ioredis";

/**
 * Submission and grade events over Redis pub/sub, so that any API instance can serve any waiting client (long-poll,
 * Server-Sent Events) whichever worker graded. One channel per assignment; each API process holds ONE subscriber
 * connection, subscribed to an assignment's channel while at least one local listener wants it (reference counted).
 * Events are hints, not a log: listeners re-read Postgres, which stays the source of truth.
 */

export type HubEvent =
  | { type: "submission"; assignmentId: string; id: string; userId: string; status: string }
  | { type: "grade"; assignmentId: string; userIds: string[] };

export const eventChannel = (prefix: string, assignmentId: string) => `${prefix}:events:assignment:${assignmentId}`;

/** Anything that can PUBLISH: the queue's own ioredis client in workers (no extra connection). */
export interface Publisher {
  publish(channel: string, message: string): Promise<unknown>;
}

export async function publishEvent(redis: Publisher, prefix: string, event: HubEvent): Promise<void> {
  await redis.publish(eventChannel(prefix, event.assignmentId), JSON.stringify(event));
}

export class TooManyListeners extends Error {}

type Listener = (event: HubEvent) => void;

export class EventHub {
  private sub: Redis | null = null;
  private readonly channels = new Map<string, { listeners: Set<Listener>; ready: Promise<unknown> }>();
  private readonly closers = new Set<() => void>();
  private count = 0;
  private closed = false;

  constructor(
    private readonly redisUrl: string,
    private readonly prefix: string,
    /** Bounded: past this many listeners in this process, listen() refuses (callers degrade to an immediate answer). */
    readonly maxListeners: number,
  ) {}

  /** Local listeners now (tests and metrics: a closed client must leave none behind). */
  get listeners(): number {
    return this.count;
  }

  private connection(): Redis {
    if (!this.sub) {
      this.sub = new Redis(this.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
      this.sub.on("error", () => undefined);
      this.sub.on("message", (channel: string, message: string) => {
        const entry = this.channels.get(channel);
        if (!entry) return;
        let event: HubEvent;
        try {
          event = JSON.parse(message) as HubEvent;
        } catch {
          return;
        }
        for (const l of [...entry.listeners]) l(event);
      });
    }
    return this.sub;
  }

  /**
   * Listens to an assignment's events until the returned stop() is called. Resolves once Redis confirmed the
   * subscription, so a caller that re-reads Postgres after this cannot miss a change published in between.
   * `onClose` runs if the hub shuts down first (the API closing): the caller answers at once.
   */
  async listen(assignmentId: string, listener: Listener, onClose: () => void): Promise<() => void> {
    if (this.closed || this.count >= this.maxListeners) throw new TooManyListeners();
    const channel = eventChannel(this.prefix, assignmentId);
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = { listeners: new Set(), ready: this.connection().subscribe(channel) };
      this.channels.set(channel, entry);
    }
    entry.listeners.add(listener);
    this.closers.add(onClose);
    this.count++;
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      this.count--;
      this.closers.delete(onClose);
      entry.listeners.delete(listener);
      // Commands on one connection run in order: a later subscribe of the same channel comes after this.
      if (entry.listeners.size === 0 && this.channels.get(channel) === entry) {
        this.channels.delete(channel);
        this.sub?.unsubscribe(channel).catch(() => undefined);
      }
    };
    try {
      await entry.ready;
    } catch (err) {
      stop();
      throw err;
    }
    return stop;
  }

  /** The API is closing: every waiter answers now, every stream ends, and the connection goes. */
  close(): void {
    this.closed = true;
    for (const c of [...this.closers]) c();
    this.closers.clear();
    this.sub?.disconnect();
    this.sub = null;
  }
}
