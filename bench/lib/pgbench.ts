/**
 * pgbench with a custom script (one submission-sized INSERT per transaction): the database's commit rate on this
 * machine, the floor under any ingest path that writes one row per request.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { PGBENCH_SCRIPT, SCRATCH_DDL } from "./scratch.ts";

const run = promisify(execFile);

/** Postgres refuses clients past max_connections; the rest of the machine (other runs) holds some too. */
export async function pgbenchClientCap(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query<{ max: number; used: number }>(
    "SELECT current_setting('max_connections')::int AS max, (SELECT count(*)::int FROM pg_stat_activity) AS used",
  );
  await c.query(SCRATCH_DDL);
  await c.end();
  return Math.max(1, rows[0]!.max - rows[0]!.used - 20);
}

export interface PgbenchResult {
  clients: number;
  tps: number;
  latencyAvgMs: number;
  failed: number;
  error?: string;
}

export async function pgbench(url: string, clients: number, seconds: number): Promise<PgbenchResult> {
  const script = path.join(tmpdir(), "bench-insert.sql");
  await writeFile(script, PGBENCH_SCRIPT);
  const { stdout } = await run("pgbench", ["-n", "-f", script, "-c", String(clients), "-j", "2", "-T", String(seconds), url], {
    maxBuffer: 1 << 20,
  });
  const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
  return {
    clients,
    tps: num(/tps = ([\d.]+)/),
    latencyAvgMs: num(/latency average = ([\d.]+) ms/),
    failed: num(/number of failed transactions: (\d+)/) || 0,
  };
}
