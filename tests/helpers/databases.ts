import pg from "pg";

const base = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/autograder";
export const TEMPLATE_DB = "autograder_test_template";

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
  const db = `autograder_test_${name.replace(/[^a-z0-9]/gi, "_").toLowerCase()}`;
  await admin(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`, `CREATE DATABASE "${db}" TEMPLATE "${TEMPLATE_DB}"`);
  return db;
}

export const dropTestDatabase = (db: string) => admin(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
