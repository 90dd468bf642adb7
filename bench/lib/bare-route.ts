/**
 * Baseline process: a bare Fastify route that does what ingest must do at the least — one raw `pg` INSERT of a
 * submission-sized row and one BullMQ `queue.add` — with no auth, validation or ORM. Its rate on this machine is
 * the ceiling the platform's ingest is compared with.
 *
 *   PORT=… DATABASE_URL=… QUEUE_PREFIX=… node --import tsx bench/lib/bare-route.ts
 */
import { Queue } from "bullmq";
import Fastify from "fastify";
import pg from "pg";
import { redisConnection } from "../../src/grading/queue.ts";
import { SCRATCH_DDL, SCRATCH_INSERT } from "./scratch.ts";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
await pool.query(SCRATCH_DDL);
const queue = new Queue("bare", {
  connection: redisConnection({ REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" }),
  prefix: process.env.QUEUE_PREFIX ?? "bench-bare",
  defaultJobOptions: { removeOnComplete: { age: 3600, count: 1000 }, removeOnFail: { age: 86_400, count: 1000 } },
});

const app = Fastify({ logger: false });
app.get("/readyz", async () => ({ ok: true }));
app.post("/submit", async (req, reply) => {
  const user = (req.headers.authorization ?? "anonymous").slice(-32);
  const { rows } = await pool.query<{ id: string }>(SCRATCH_INSERT, [user, JSON.stringify((req.body as { answer: unknown }).answer)]);
  const id = rows[0]!.id;
  await queue.add("grade", { submissionId: id }, { jobId: id });
  return reply.status(202).send({ id, status: "queued", attempt: 1 });
});
await app.listen({ port: Number(process.env.PORT ?? 3999), host: "127.0.0.1" });

process.once("SIGTERM", async () => {
  await app.close();
  await queue.close();
  await pool.end();
  process.exit(0);
});
