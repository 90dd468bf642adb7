import { Queue } from "bullmq";
import type { Redis } from "ioredis";

/**
 * Delivers jobs twice: each job found in Redis for one of the given submissions is added again under another
 * job id, with the same name and payload, as a second enqueue or a replayed message would. The queues are
 * found from their keys, so this does not depend on how the code under test names its queues or job ids.
 */
export class Duplicator {
  private readonly wanted = new Set<string>();
  private readonly done = new Set<string>();
  private readonly queues = new Map<string, Queue>();
  private timer: NodeJS.Timeout | undefined;
  added = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly redisUrl: string,
  ) {}

  want(submissionId: string) {
    this.wanted.add(submissionId);
  }

  start(intervalMs = 100) {
    let busy = false;
    this.timer = setInterval(() => {
      if (busy) return;
      busy = true;
      this.pass()
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, intervalMs);
  }

  private async queueNames(): Promise<string[]> {
    const names = new Set<string>();
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", `${this.prefix}:*:meta`, "COUNT", 1000);
      cursor = next;
      for (const k of keys) names.add(k.slice(this.prefix.length + 1, -":meta".length));
    } while (cursor !== "0");
    return [...names];
  }

  private async pass() {
    if (this.done.size === this.wanted.size) return;
    for (const name of await this.queueNames()) {
      let q = this.queues.get(name);
      if (!q) {
        const url = new URL(this.redisUrl);
        q = new Queue(name, { connection: { host: url.hostname, port: Number(url.port || 6379) }, prefix: this.prefix });
        this.queues.set(name, q);
      }
      const jobs = await q.getJobs(["waiting", "prioritized", "delayed", "active", "completed"], 0, 2000);
      for (const job of jobs) {
        const id = (job.data as { submissionId?: unknown })?.submissionId;
        if (typeof id !== "string" || !this.wanted.has(id) || this.done.has(id) || String(job.id).endsWith("-dup")) continue;
        this.done.add(id);
        await q.add(job.name, job.data, { jobId: `${job.id}-dup` });
        this.added++;
      }
    }
  }

  async stop() {
    clearInterval(this.timer);
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
