// Applies prisma/migrations without Prisma's native schema engine (it cannot be downloaded on the
// offline machines), keeping `_prisma_migrations` exactly as `prisma migrate deploy` keeps it, so
// either tool can take over from the other.
import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";

export const DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/autograder";
export const DEFAULT_MIGRATIONS_DIR = "prisma/migrations";

/** Prisma Migrate's own advisory-lock key: taking the same one also serialises us with `prisma migrate deploy`. */
const LOCK_KEY = 72707369;

// Prisma's DDL, column for column (sql-schema-connector, postgres flavour).
const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`;

/** A refusal or failure the operator has to act on; its message is the whole story, no stack needed. */
export class MigrationError extends Error {
  override name = "MigrationError";
}

export interface Migration {
  /** The directory name, `<timestamp>_<name>`: Prisma's migration_name. */
  name: string;
  sql: string;
  /** sha256 hex of the file's bytes, as Prisma records it. */
  checksum: string;
}

export interface ApplyOptions {
  /** Called after each migration commits, so a CLI can report progress before a later one fails. */
  onApplied?: (name: string, ms: number) => void;
  /** How long to wait for another process's migration lock. Default 5 minutes. */
  lockTimeoutMs?: number;
}

export function checksum(sql: string | Buffer): string {
  return createHash("sha256").update(sql).digest("hex");
}

export function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!name) throw new MigrationError(`${redactUrl(url)} names no database`);
  return name;
}

/** The same server and credentials, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

/** Every directory is a migration, in Prisma's order (it sorts with localeCompare too). */
export async function readMigrations(dir = DEFAULT_MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return [];
    throw err;
  });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name);
  names.sort((a, b) => a.localeCompare(b));
  return Promise.all(
    names.map(async (name) => {
      const file = path.join(dir, name, "migration.sql");
      const bytes = await readFile(file).catch(() => {
        throw new MigrationError(`${file} is missing: every directory in ${dir} must hold a migration.sql`);
      });
      return { name, sql: bytes.toString("utf8"), checksum: checksum(bytes) };
    }),
  );
}

/** Creates the database named in the URL when it does not exist. Returns whether it created it. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const name = databaseName(url);
  // Try the database itself first: a role may own it without being allowed into `postgres`.
  try {
    await withClient(url, async () => {});
    return false;
  } catch (err) {
    if ((err as { code?: string }).code !== "3D000") throw err; // 3D000: database does not exist
  }
  return withClient(withDatabase(url, "postgres"), async (client) => {
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === "42P04") return false; // created meanwhile by another process
      throw err;
    }
  });
}

/**
 * Applies every migration in `dir` that the database has not recorded, in order, each in its own
 * transaction together with its `_prisma_migrations` row. Returns the names applied.
 */
export async function applyMigrations(url: string, dir = DEFAULT_MIGRATIONS_DIR, options: ApplyOptions = {}): Promise<string[]> {
  const migrations = await readMigrations(dir);
  return withClient(url, async (client) => {
    await lock(client, options.lockTimeoutMs ?? 300_000);
    try {
      await client.query(CREATE_TABLE);
      const pending = await pendingMigrations(client, migrations);
      const applied: string[] = [];
      for (const migration of pending) {
        const started = Date.now();
        await apply(client, migration);
        applied.push(migration.name);
        options.onApplied?.(migration.name, Date.now() - started);
      }
      return applied;
    } finally {
      // Ending the session releases the lock too; never let a dead connection mask the real error.
      await client.query("SELECT pg_advisory_unlock($1)", [LOCK_KEY]).catch(() => {});
    }
  });
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  // Without a timeout an unroutable host hangs for the OS's TCP timeout, minutes.
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on("error", () => {}); // a dropped idle connection surfaces on the next query instead of crashing
  await client.connect();
  try {
    const schema = new URL(url).searchParams.get("schema");
    if (schema) {
      // Prisma URLs name the schema in `?schema=`; pg ignores the parameter, Prisma's SQL relies on search_path.
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`);
      await client.query(`SET search_path TO ${pg.escapeIdentifier(schema)}`);
    }
    return await use(client);
  } finally {
    await client.end();
  }
}

async function lock(client: pg.Client, timeoutMs: number): Promise<void> {
  await client.query(`SET lock_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
  try {
    await client.query("SELECT pg_advisory_lock($1)", [LOCK_KEY]);
  } catch (err) {
    if ((err as { code?: string }).code !== "55P03") throw err; // 55P03: lock_not_available
    throw new MigrationError(
      `another process held the migration lock (pg_advisory_lock(${LOCK_KEY})) for ${timeoutMs / 1000} s; ` +
        "is a migration still running? See pg_locks WHERE objid = " +
        LOCK_KEY,
    );
  }
  await client.query("RESET lock_timeout"); // the migrations themselves may wait on locks as long as they need
}

async function pendingMigrations(client: pg.Client, migrations: Migration[]): Promise<Migration[]> {
  const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null; logs: string | null }>(
    `SELECT migration_name, checksum, finished_at, logs FROM _prisma_migrations
      WHERE rolled_back_at IS NULL ORDER BY started_at`,
  );
  const failed = rows.filter((r) => r.finished_at === null);
  if (failed.length > 0) {
    const details = failed.map((r) => `  ${r.migration_name}: ${firstLine(r.logs) ?? "(no logs)"}`).join("\n");
    throw new MigrationError(
      `_prisma_migrations records failed migrations; repair the database by hand, then mark each one rolled back ` +
        `(UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = '...', ` +
        `or \`prisma migrate resolve --rolled-back <name>\`):\n${details}`,
    );
  }
  const applied = new Map(rows.map((r) => [r.migration_name, r.checksum]));
  const edited = migrations.filter((m) => applied.has(m.name) && !sameScript(m.sql, applied.get(m.name)!));
  if (edited.length > 0) {
    throw new MigrationError(
      `migrations were edited after they were applied (file checksum differs from _prisma_migrations): ` +
        `${edited.map((m) => m.name).join(", ")}. Restore the applied version and put the change in a new migration.`,
    );
  }
  return migrations.filter((m) => !applied.has(m.name));
}

/** Like Prisma, a checkout that only changed line endings (git on Windows) still matches. */
function sameScript(sql: string, recorded: string): boolean {
  return [sql, sql.replaceAll("\r\n", "\n"), sql.replaceAll(/\r?\n/g, "\r\n")].some((s) => checksum(s) === recorded);
}

// Prisma writes BEGIN; ... COMMIT; itself (e.g. when an enum loses a value); such a script cannot
// sit inside our transaction, so it runs the way `prisma migrate deploy` runs every script.
const OWN_TRANSACTION = /^\s*(BEGIN|START\s+TRANSACTION|COMMIT|ROLLBACK)\b[^;]*;/im;

async function apply(client: pg.Client, m: Migration): Promise<void> {
  if (OWN_TRANSACTION.test(m.sql)) return applyAsPrismaDoes(client, m);
  await client.query("BEGIN");
  try {
    await client.query(m.sql);
    await client.query(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), clock_timestamp(), 1)`,
      [randomUUID(), m.checksum, m.name],
    );
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    // Nothing was applied, so nothing is recorded: fixing the file and re-running is enough.
    throw new MigrationError(`migration ${m.name} failed and was rolled back: ${describeSqlError(err, m.sql)}`);
  }
}

async function applyAsPrismaDoes(client: pg.Client, m: Migration): Promise<void> {
  const id = randomUUID();
  await client.query("INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())", [
    id,
    m.checksum,
    m.name,
  ]);
  try {
    await client.query(m.sql);
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {}); // leave a failed explicit transaction; a no-op otherwise
    const message = describeSqlError(err, m.sql);
    await client.query("UPDATE _prisma_migrations SET logs = $2 WHERE id = $1", [id, message]);
    throw new MigrationError(
      `migration ${m.name} failed; it manages its own transactions, so it may be partly applied, ` +
        `and it is recorded as failed: ${message}`,
    );
  }
  await client.query("UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 WHERE id = $1", [id]);
}

function describeSqlError(err: unknown, sql: string): string {
  const e = err as { message?: string; position?: string };
  const line = e.position ? ` (line ${sql.slice(0, Number(e.position)).split("\n").length})` : "";
  return `${e.message ?? String(err)}${line}`;
}

function firstLine(text: string | null): string | undefined {
  return text?.split("\n")[0];
}

const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ECONNRESET", "57P03"]);

/** One line for failures an operator can fix (server down, refusals, SQL errors); undefined for bugs. */
export function explainFailure(err: unknown, url: string): string | undefined {
  const e = err as { code?: string; message?: string; errors?: { code?: string }[] };
  const code = e.code ?? e.errors?.[0]?.code;
  if ((code && UNREACHABLE.has(code)) || /connection timeout/i.test(e.message ?? "")) {
    return (
      `PostgreSQL is not reachable at ${redactUrl(url)} (${code ?? e.message}). Start it with ` +
      "`docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d postgres`, or on a machine with a local cluster: " +
      "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
    );
  }
  if (err instanceof MigrationError) return err.message;
  if (err instanceof pg.DatabaseError) return `PostgreSQL refused (${err.code}) at ${redactUrl(url)}: ${err.message}`;
  return undefined;
}
