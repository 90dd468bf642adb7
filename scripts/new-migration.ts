// `npm run db:new-migration -- <name>`: writes the migration that brings prisma/migrations up to
// prisma/schema.prisma. `-- --check` only reports (exit 1) when they disagree, for CI.
import { DEFAULT_DATABASE_URL, explainFailure } from "../src/db/migrate.ts";
import { diffMigrationsToSchema, writeNewMigration } from "../src/db/schema-engine.ts";

const url = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
const args = process.argv.slice(2);

if (args.length !== 1 || args[0] === "--help" || args[0] === "-h") {
  console.error("usage: npm run db:new-migration -- <name>   |   npm run db:new-migration -- --check");
  process.exit(2);
}

try {
  if (args[0] === "--check") {
    const sql = await diffMigrationsToSchema({ url });
    if (sql) {
      console.error("prisma/schema.prisma and prisma/migrations disagree; `npm run db:new-migration -- <name>` would write:\n");
      console.error(sql);
      process.exit(1);
    }
    console.log("prisma/migrations match prisma/schema.prisma");
  } else {
    const written = await writeNewMigration(args[0]!, { url });
    console.log(written ? `wrote ${written.dir}/migration.sql (review it, then npm run db:migrate)` : "no changes");
  }
} catch (err) {
  console.error(explainFailure(err, url) ?? err);
  process.exit(1);
}
