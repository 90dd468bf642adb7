// `npm run db:migrate`: creates the database if needed and applies prisma/migrations offline.
import { DEFAULT_DATABASE_URL, applyMigrations, databaseName, ensureDatabase, explainFailure } from "../src/db/migrate.ts";

const url = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;

try {
  if (await ensureDatabase(url)) console.log(`created database ${databaseName(url)}`);
  const applied = await applyMigrations(url, undefined, {
    onApplied: (name, ms) => console.log(`applied ${name} (${ms} ms)`),
  });
  if (applied.length === 0) console.log("database is up to date");
} catch (err) {
  // Known failures get one line; anything else is a bug and keeps its stack.
  console.error(explainFailure(err, url) ?? err);
  process.exit(1);
}
