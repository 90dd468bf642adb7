/**
 * Baseline process: the grading half of a bare pipeline. A BullMQ worker (concurrency 16) that, per job, reads the
 * row bare-route.ts inserted, scores the `choice` answer, and writes status, score and graded_at. Together with the
 * bare route it is the end-to-end ceiling the platform's graded/s is compared with. /healthz on PORT says it runs.
 *
 *   PORT=… DATABASE_URL=… QUEUE_PREFIX=… node --import tsx bench/lib/bare-pipeline.ts
 */
import { createServer } from "node:http";
import { Worker } from "bullmq";
import pg from "pg";
import { redisConnection } from "../../src/grading/queue.ts";
import { SCRATCH_DDL } from "./scratch.ts";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 16 });
await pool.query(SCRATCH_DDL);
const worker = new Worker(
  "bare",
  async (job) => {
    const { rows } = await pool.query<{ answer: { selected: string[] } }>("SELECT answer FROM bench_submission WHERE id = $1", [
      job.data.submissionId,
    ]);
    const selected = rows[0]?.answer.selected ?? [];
    const score = selected.length === 1 && selected[0] === "red" ? 2 : 0;
    await pool.query("UPDATE bench_submission SET status = 'graded', score = $2, graded_at = clock_timestamp() WHERE id = $1", [
      job.data.submissionId,
      score,
    ]);
  },
  {
    connection: redisConnection({ REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" }),
    prefix: process.env.QUEUE_PREFIX ?? "bench-bare",
    concurrency: 16,
    removeOnComplete: { age: 3600, count: 1000 },
  },
);
await worker.waitUntilReady();
const http = createServer((_, res) => res.end("ok")).listen(Number(process.env.PORT ?? 3998), "127.0.0.1");

process.once("SIGTERM", async () => {
  http.close();
  await worker.close();
  await pool.end();
  process.exit(0);
});
