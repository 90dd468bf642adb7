import { applyMigrations } from "../../src/db/migrate.ts";
import { admin, TEMPLATE_DB, urlFor } from "./databases.ts";

/** Migrates one template database per test run; each test file copies it. */
export default async function setup() {
  await admin(`DROP DATABASE IF EXISTS "${TEMPLATE_DB}" WITH (FORCE)`, `CREATE DATABASE "${TEMPLATE_DB}"`);
  await applyMigrations(urlFor(TEMPLATE_DB));
}
