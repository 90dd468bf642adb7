import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { audit, expectedFigures, Recovery, report, settle, type Figures } from "./helpers/check.ts";
import { createCluster, FAULT_ENV, type Cluster, type Proc } from "./helpers/cluster.ts";
import { Duplicator } from "./helpers/duplicates.ts";
import { ANSWERS, createAssignment, createWorld, SLOW_ANSWER, startStream, type StreamOptions, type World } from "./helpers/load.ts";
import { restartPostgres, restartRedis } from "./helpers/services.ts";

/**
 * The guarantees of the README's "Guarantees" section, tried on real processes: the API and two workers
 * as children (`node --import tsx src/main.ts api|worker`), the machine's Postgres and Redis, and a stream
 * of 300 answers from 20 students on 8 clients that retry with their Idempotency-Key.
 */
const TOTAL = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let c: Cluster;
let world: World;
const lines: string[] = [];

beforeAll(async () => {
  c = await createCluster("stream");
  await c.ensureUp();
  world = await createWorld(c.baseUrl, 20);
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") for (const p of [c.api, ...c.workers]) console.log(`--- ${p.name} log ---\n${await c.logTail(p)}`);
});

afterAll(async () => {
  if (lines.length) console.log(lines.join("\n"));
  await c?.close();
});

/** One fault test: a fresh assignment, a stream, the fault script while it runs, then the audit. */
async function underFault(
  name: string,
  fault: (ctx: { mark: () => void; progress: () => number; streamDone: () => boolean }) => Promise<void>,
  opts: Partial<StreamOptions> = {},
): Promise<Figures> {
  await c.ensureUp();
  const assignmentId = await createAssignment(world, name);
  const recovery = new Recovery(c.pool, c.baseUrl);
  let faultDone: () => void = () => undefined;
  const after = new Promise<void>((resolve) => (faultDone = resolve));
  const stream = startStream(world, { assignmentId, total: TOTAL, concurrency: 8, paceMs: 250, tail: { share: 0.9, after }, ...opts });
  let finished = false;
  const streamDone = stream.done.finally(() => (finished = true));
  const mark = () => recovery.mark(stream.sent);
  try {
    await fault({ mark, progress: () => stream.acceptedCount() / TOTAL, streamDone: () => finished });
  } finally {
    faultDone();
  }
  const figures = await streamDone;
  await settle(c.pool, assignmentId);
  const f = await audit(c.pool, assignmentId, stream.sent, figures, await recovery.all());
  lines.push(report(name, f));
  return f;
}

/** Waits until the stream has reached this share of its answers. */
async function at(progress: () => number, share: number) {
  while (progress() < share) await sleep(50);
}

/**
 * Grading keeps up with the stream, so Redis is usually empty: both workers are paused a moment first,
 * so the fault finds answers waiting in Redis. Returns how many were queued when it struck.
 */
async function withBacklog(fault: () => Promise<unknown>): Promise<number> {
  for (const w of c.workers) c.signal(w, "SIGSTOP");
  try {
    await sleep(1500);
    const { rows } = await c.pool.query(`SELECT count(*)::int AS n FROM "Submission" WHERE status = 'queued'`);
    await fault();
    return rows[0].n;
  } finally {
    for (const w of c.workers) c.signal(w, "SIGCONT");
  }
}

/** Whether this worker holds a grading lease in Postgres right now (on a submission to `problem`, if given). */
async function holdsLease(p: Proc, problem?: string): Promise<boolean> {
  const { rows } = await c.pool.query<{ by: string | null }>(
    `SELECT "claimedBy" AS by FROM "Submission" WHERE status = 'running' AND ($1::text IS NULL OR "problemSlug" = $1)`,
    [problem ?? null],
  );
  return rows.some((r) => r.by?.split(":")[1] === String(c.pid(p)));
}

/** Waits (up to a bound) until this worker holds a grading lease, so a fault lands while it grades. */
async function whenGrading(p: Proc, timeoutMs = 3000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await holdsLease(p)) return true;
    await sleep(20);
  }
  return false;
}

/**
 * SIGSTOPs the worker at a moment it holds a lease. Only a slow answer's lease (SLOW_ANSWER, ~30 ms to grade) is
 * held long enough to be seen and then stopped: the worker is stopped as soon as one is seen, any statement it had
 * already sent is let land (a finish in flight still commits), and if the lease is gone it is resumed and watched
 * again. It is never stopped on a guess, so the other worker does not take all the slow answers meanwhile.
 */
async function pauseWhileGrading(p: Proc, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!(await holdsLease(p, SLOW_ANSWER.problem))) continue;
    c.signal(p, "SIGSTOP");
    await sleep(100);
    if (await holdsLease(p)) return true;
    c.signal(p, "SIGCONT");
  }
  c.signal(p, "SIGSTOP");
  return false;
}

describe("guarantees under real faults", () => {
  it("a worker SIGKILLed while grading, five times during the stream", async () => {
    let kills = 0;
    let during = 0;
    let whileGrading = 0;
    const f = await underFault(
      "worker SIGKILL x5",
      async ({ mark, progress, streamDone }) => {
        await at(progress, 0.05);
        // A killed worker restarts in the background (a start takes seconds); the next kill takes a ready one.
        const restarting = new Map<Proc, Promise<void>>();
        while (kills < 5) {
          const ready = c.workers.filter((w) => !restarting.has(w));
          if (!ready.length) {
            await Promise.race(restarting.values());
            continue;
          }
          const w = ready[kills % ready.length]!;
          if (await whenGrading(w)) whileGrading++;
          await c.stop(w, "SIGKILL");
          kills++;
          if (!streamDone()) during++;
          mark();
          restarting.set(
            w,
            c.start(w).finally(() => restarting.delete(w)),
          );
          await sleep(1500);
        }
        await Promise.all(restarting.values());
      },
      { paceMs: 400 },
    );
    console.log(`[faults] worker SIGKILL x5: ${during} of ${kills} kills during the stream, ${whileGrading} while grading`);
    expect(during).toBe(5);
    expect(f).toMatchObject(expectedFigures(f));
  });

  it("the API SIGKILLed mid-stream: clients retry with their Idempotency-Key, each answer exists once", async () => {
    const f = await underFault("API SIGKILL", async ({ mark, progress }) => {
      await at(progress, 0.3);
      await c.stop(c.api, "SIGKILL");
      mark();
      await sleep(1000);
      await c.start(c.api);
    });
    expect(f.networkErrors).toBeGreaterThan(0);
    expect(f).toMatchObject(expectedFigures(f));
  });

  it("the same job delivered twice, and a lease expiring under a paused worker: one grade, not two", async () => {
    const dup = new Duplicator(c.redis, c.prefix, process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    let n = 0;
    dup.start();
    let paused = false;
    const f = await underFault(
      "duplicate delivery + lease expiry",
      async ({ mark, progress }) => {
        await at(progress, 0.3);
        const w = c.workers[0]!;
        paused = await pauseWhileGrading(w, 20_000);
        mark();
        // Past the lease and the stalled-job check, so another worker may take the run while this one sleeps.
        await sleep(4 * Number(FAULT_ENV.GRADING_LOCK_MS) + 1000);
        c.signal(w, "SIGCONT");
      },
      { onAccepted: (s) => n++ % 5 === 0 && dup.want(s.id!), answers: [...ANSWERS, SLOW_ANSWER] },
    );
    await dup.stop();
    console.log(`[faults] duplicate delivery: ${dup.added} jobs delivered twice; worker paused while grading: ${paused}`);
    expect(dup.added).toBeGreaterThan(20);
    expect(paused).toBe(true);
    expect(f.retaken).toBeGreaterThan(0); // the paused worker's run was taken over
    expect(c.running(c.workers[0]!)).toBe(true);
    expect(f).toMatchObject(expectedFigures(f));
  });

  it("Redis flushed mid-stream (every key under the queue prefix)", async () => {
    let deleted = 0;
    let waiting = 0;
    const f = await underFault("Redis flush", async ({ mark, progress }) => {
      await at(progress, 0.4);
      waiting = await withBacklog(async () => {
        mark();
        deleted = await c.flushQueues();
      });
    });
    console.log(`[faults] Redis flush: ${deleted} keys deleted, ${waiting} answers were waiting`);
    expect(waiting).toBeGreaterThan(0);
    expect(deleted).toBeGreaterThan(0);
    expect(f).toMatchObject(expectedFigures(f));
  });

  it("SIGTERM of every process during the stream, then start again: nothing lost, nothing left leased", async () => {
    let codes: (number | null)[] = [];
    let leftRunning = -1;
    let shutdownMs = 0;
    let startMs = 0;
    const f = await underFault("SIGTERM all + restart", async ({ mark, progress }) => {
      await at(progress, 0.4);
      const t0 = Date.now();
      codes = await Promise.all([c.api, ...c.workers].map((p) => c.stop(p, "SIGTERM")));
      shutdownMs = Date.now() - t0;
      mark();
      leftRunning = (await c.pool.query(`SELECT count(*)::int AS n FROM "Submission" WHERE status = 'running'`)).rows[0].n;
      const t1 = Date.now();
      await c.ensureUp();
      startMs = Date.now() - t1;
    });
    console.log(
      `[faults] SIGTERM all: exit codes ${codes.join(",")} after ${shutdownMs} ms; running after shutdown: ${leftRunning}; restarted in ${startMs} ms`,
    );
    expect(codes).toEqual([0, 0, 0]);
    expect(leftRunning).toBe(0);
    expect(f).toMatchObject(expectedFigures(f));
  });

  it("Redis restarted mid-stream (shutdown nosave, then started again)", async () => {
    let waiting = 0;
    const f = await underFault("Redis restart", async ({ mark, progress }) => {
      await at(progress, 0.4);
      waiting = await withBacklog(async () => {
        mark();
        await restartRedis(1000);
      });
    });
    console.log(`[faults] Redis restart: ${waiting} answers were waiting`);
    expect(waiting).toBeGreaterThan(0);
    expect([c.api, ...c.workers].every((p) => c.running(p))).toBe(true);
    expect(f).toMatchObject(expectedFigures(f));
  });

  it("Postgres restarted mid-stream: the API answers 503 in the error shape meanwhile and recovers by itself", async () => {
    let restartMs = 0;
    const f = await underFault("Postgres restart", async ({ mark, progress }) => {
      await at(progress, 0.4);
      const t0 = Date.now();
      await restartPostgres();
      restartMs = Date.now() - t0;
      mark(); // from Postgres being back until the API is ready and the answers before it are graded
    });
    console.log(`[faults] Postgres restart: took ${restartMs} ms`);
    // Nothing was restarted by the test: the processes found Postgres again themselves.
    expect([c.api, ...c.workers].every((p) => c.running(p))).toBe(true);
    expect(f.unavailable).toBeGreaterThan(0);
    expect(f).toMatchObject(expectedFigures(f));
  });
});
