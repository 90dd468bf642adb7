import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { resilientPool } from "../src/lib/pg-pool.ts";
import { urlFor } from "./helpers/databases.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const url = urlFor("postgres");
const admin = new pg.Pool({ connectionString: url, max: 1 });
afterAll(() => admin.end());

/** Ends a backend the way a Postgres restart or an admin does (57P01), and waits until it is gone. */
async function terminate(pid: number) {
  await admin.query("SELECT pg_terminate_backend($1)", [pid]);
  while ((await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).rowCount) await sleep(20);
  await sleep(100); // the FATAL message reaches the client's socket
}

const backendPid = async (q: pg.Pool | pg.PoolClient) => (await q.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;

// Without the listeners these would end the test process with an unhandled 'error' event (how the API died
// when Postgres restarted under a submission stream); vitest reports that as a failed run.
describe("resilientPool: Postgres dropping a connection never ends the process", () => {
  it("a checked-out client between two queries: its next query fails, the pool hands out a working one", async () => {
    const pool = resilientPool({ connectionString: url, max: 2 });
    try {
      const client = await pool.connect();
      await terminate(await backendPid(client));
      await expect(client.query("SELECT 1")).rejects.toThrow();
      client.release(true);
      expect((await pool.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it("an idle client: the pool drops it and opens another", async () => {
    const pool = resilientPool({ connectionString: url, max: 1 });
    try {
      await terminate(await backendPid(pool));
      expect(pool.idleCount).toBe(0);
      expect((await pool.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    } finally {
      await pool.end();
    }
  });
});
