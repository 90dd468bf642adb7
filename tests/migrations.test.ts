// The offline migration tooling against a real PostgreSQL: committed migrations must match
// schema.prisma, and the runner must keep _prisma_migrations the way `prisma migrate deploy` does.
import { createHash } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, ensureDatabase, readMigrations, withDatabase } from "../src/db/migrate.ts";
import { diffMigrationsToSchema, writeNewMigration } from "../src/db/schema-engine.ts";

const SERVER = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/autograder";
const DB = "autograder_test_migrations";
const url = withDatabase(SERVER, DB);
const MIGRATIONS = "prisma/migrations";

const tmpDirs: string[] = [];

async function admin<T>(fn: (client: pg.Client) => Promise<T>, database = "postgres"): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(SERVER, database) });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A database of our own, emptied: each test that applies migrations starts from nothing. */
async function freshDatabase(name: string): Promise<string> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
  const dbUrl = withDatabase(SERVER, name);
  expect(await ensureDatabase(dbUrl)).toBe(true);
  return dbUrl;
}

async function copyOfMigrations(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "migrations-"));
  tmpDirs.push(dir);
  await cp(MIGRATIONS, dir, { recursive: true });
  return dir;
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

beforeAll(async () => {
  await freshDatabase(DB);
});

afterAll(async () => {
  await Promise.all(tmpDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe("committed migrations", () => {
  it("match prisma/schema.prisma (else run `npm run db:new-migration -- <name>`)", async () => {
    expect(await diffMigrationsToSchema({ url: SERVER })).toBe("");
  }, 60_000);
});

describe("applyMigrations", () => {
  it("applies every migration on a fresh database, then none", async () => {
    const names = (await readMigrations(MIGRATIONS)).map((m) => m.name);
    expect(names.length).toBeGreaterThan(0);
    expect(await applyMigrations(url)).toEqual(names);
    expect(await applyMigrations(url)).toEqual([]);
  });

  it("records each migration in Prisma's columns with the file's sha256", async () => {
    const columns = await admin(async (c) => {
      const { rows } = await c.query(
        `SELECT column_name FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
      );
      return rows.map((r) => r.column_name);
    }, DB);
    expect(columns).toEqual([
      "id",
      "checksum",
      "finished_at",
      "migration_name",
      "logs",
      "rolled_back_at",
      "started_at",
      "applied_steps_count",
    ]);

    const rows = await admin((c) => c.query("SELECT * FROM _prisma_migrations ORDER BY started_at"), DB);
    const expected = await Promise.all(
      (await readMigrations(MIGRATIONS)).map(async (m) => ({
        name: m.name,
        checksum: sha256(await readFile(path.join(MIGRATIONS, m.name, "migration.sql"))),
      })),
    );
    expect(rows.rows.map((r) => ({ name: r.migration_name, checksum: r.checksum }))).toEqual(expected);
    for (const row of rows.rows) {
      expect(row).toMatchObject({ logs: null, rolled_back_at: null, applied_steps_count: 1 });
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
    }
  });

  it("refuses a migration edited after it was applied, but not a CRLF checkout of it", async () => {
    const [first] = await readMigrations(MIGRATIONS);
    const dir = await copyOfMigrations();
    const file = path.join(dir, first!.name, "migration.sql");

    await writeFile(file, first!.sql.replaceAll("\n", "\r\n"));
    expect(await applyMigrations(url, dir)).toEqual([]);

    await writeFile(file, `${first!.sql}\n-- edited\n`);
    await expect(applyMigrations(url, dir)).rejects.toThrow(`edited after they were applied`);
  });

  it("refuses while a failed migration is recorded", async () => {
    await admin((c) => c.query(`INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES ('failed-1', 'x', 'x_failed')`), DB);
    try {
      await expect(applyMigrations(url)).rejects.toThrow(/failed migrations.*\n\s+x_failed/);
    } finally {
      await admin((c) => c.query(`DELETE FROM _prisma_migrations WHERE id = 'failed-1'`), DB);
    }
  });

  it("rolls a failing migration back entirely and records nothing", async () => {
    const dir = await copyOfMigrations();
    await mkdir(path.join(dir, "99991231000000_broken"));
    await writeFile(path.join(dir, "99991231000000_broken", "migration.sql"), `CREATE TABLE "Partial" (id INT);\nSELECT 1/0;\n`);

    await expect(applyMigrations(url, dir)).rejects.toThrow(/99991231000000_broken failed and was rolled back: division by zero/);
    const left = await admin(async (c) => {
      const table = await c.query(`SELECT to_regclass('"Partial"') AS t`);
      const row = await c.query(`SELECT 1 FROM _prisma_migrations WHERE migration_name = '99991231000000_broken'`);
      return { table: table.rows[0].t, rows: row.rowCount };
    }, DB);
    expect(left).toEqual({ table: null, rows: 0 });
  });

  it("applies each migration exactly once when two processes race", async () => {
    const raceUrl = await freshDatabase(`${DB}_race`);
    const names = (await readMigrations(MIGRATIONS)).map((m) => m.name);
    const [a, b] = await Promise.all([applyMigrations(raceUrl), applyMigrations(raceUrl)]);
    expect([...a!, ...b!].sort()).toEqual(names);
    const { rowCount } = await admin((c) => c.query("SELECT 1 FROM _prisma_migrations"), `${DB}_race`);
    expect(rowCount).toBe(names.length);
  });
});

describe("writeNewMigration", () => {
  const head = `datasource db {\n  provider = "postgresql"\n}\n\n`;
  const before = `${head}enum Color {\n  red\n  green\n  blue\n}\n\nmodel Paint {\n  id    Int   @id\n  color Color @default(red)\n}\n`;
  const after = `${head}enum Color {\n  red\n  green\n}\n\nmodel Paint {\n  id    Int     @id\n  color Color   @default(red)\n  name  String?\n}\n`;

  it("writes Prisma-style migrations that apply, including Prisma's own BEGIN/COMMIT", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "new-migration-"));
    tmpDirs.push(dir);
    const schemaPath = path.join(dir, "schema.prisma");
    const migrationsDir = path.join(dir, "migrations");
    const opts = { url: SERVER, schemaPath, migrationsDir };

    await writeFile(schemaPath, before);
    const init = await writeNewMigration("Init", { ...opts, now: new Date("2030-01-02T03:04:05Z") });
    expect(init?.dir).toBe(path.join(migrationsDir, "20300102030405_init"));
    expect(await readFile(path.join(migrationsDir, "migration_lock.toml"), "utf8")).toBe(
      '# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = "postgresql"\n',
    );

    await writeFile(schemaPath, after);
    const drop = await writeNewMigration("dropBlue", { ...opts, now: new Date("2030-01-03T00:00:00Z") });
    expect(drop?.dir).toBe(path.join(migrationsDir, "20300103000000_drop_blue"));
    expect(drop?.sql).toMatch(/^BEGIN;$/m); // an enum losing a value: the script manages its own transaction

    expect(await writeNewMigration("nothing", opts)).toBeUndefined();
    expect(await diffMigrationsToSchema(opts)).toBe("");

    const dbUrl = await freshDatabase(`${DB}_new`);
    expect(await applyMigrations(dbUrl, migrationsDir)).toEqual(["20300102030405_init", "20300103000000_drop_blue"]);
    const row = await admin(
      (c) => c.query(`SELECT finished_at, applied_steps_count FROM _prisma_migrations WHERE migration_name LIKE '%drop_blue'`),
      `${DB}_new`,
    );
    expect(row.rows[0]).toMatchObject({ applied_steps_count: 1, finished_at: expect.any(Date) });
  }, 60_000);
});
