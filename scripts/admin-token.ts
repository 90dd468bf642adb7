/**
 * `npm run admin:token -- --email <admin email> [--name <token name>]`: the way back in once ADMIN_TOKEN
 * is retired (or every admin token is lost). Runs on the server against DATABASE_URL: finds the user by
 * email or creates it, makes it an admin, and prints a new token once (only its hash is stored).
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { ConfigError, loadConfig } from "../src/config.ts";
import { createDb } from "../src/db.ts";
import { UserService } from "../src/services/users.ts";

const usage = "usage: npm run admin:token -- --email <admin email> [--name <token name>]";

async function main() {
  const { values } = parseArgs({
    options: { email: { type: "string" }, name: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return void console.log(usage);
  const email = z.string().email().max(320).safeParse(values.email);
  const name = z
    .string()
    .trim()
    .min(1)
    .max(100)
    .safeParse(values.name ?? "admin:token");
  if (!email.success || !name.success) {
    console.error(
      `${values.email === undefined ? "--email is required" : "--email and --name must be an email and 1-100 characters"}\n${usage}`,
    );
    process.exit(2);
  }
  const config = loadConfig();
  const db = createDb(config.DATABASE_URL);
  try {
    const { user, token } = await new UserService(db, config).issueAdminToken({ email: email.data, name: name.data });
    const what = user.created ? "created admin" : user.promoted ? "made admin" : "admin";
    console.error(`${what} ${user.email} (${user.id}); token '${token.name}' expires ${token.expiresAt.toISOString()}. It is shown once:`);
    console.log(token.secret);
  } finally {
    await db.$disconnect();
  }
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : `admin:token failed: ${(err as Error).message}`);
  process.exit(1);
});
