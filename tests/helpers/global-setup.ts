import { randomBytes } from "node:crypto";
import { applyMigrations } from "../../src/db/migrate.ts";
import { admin, templateDb, urlFor } from "./databases.ts";

/** Migrates one template database per test run; each test file copies it. Workers inherit the run id. */
export default async function setup() {
  process.env.AUTOGRADER_TEST_RUN = randomBytes(3).toString("hex");
  const template = templateDb();
  await admin(`CREATE DATABASE "${template}"`);
  await applyMigrations(urlFor(template));
  return async () => {
    await admin(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
  };
}
