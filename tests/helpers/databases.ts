import pg from "pg";

const base = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/autograder";
/** Set by the global setup, so two test runs on one machine (CI and a developer) never share databases. */
export const runId = () => process.env.AUTOGRADER_TEST_RUN ?? "local";
export const templateDb = () => `autograder_test_template_${runId()}`;

export function urlFor(database: string): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Runs statements on the maintenance database (CREATE/DROP DATABASE cannot run inside the target). */
export async function admin(...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: urlFor("postgres") });
  await client.connect();
  try {
    for (const sql of statements) await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh database for one test file, copied from the migrated template (much faster than migrating). */
export async function createTestDatabase(name: string): Promise<string> {
  const db = `autograder_test_${runId()}_${name.replace(/[^a-z0-9]/gi, "_").toLowerCase()}`;
  await admin(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`, `CREATE DATABASE "${db}" TEMPLATE "${templateDb()}"`);
  return db;
}

export const dropTestDatabase = (db: string) => admin(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
