import pg from "pg";
import { Prisma } from "../db.ts";

/** True for a unique-constraint violation (P2002), the one Prisma error services turn into a 409. */
export const isUniqueViolation = (e: unknown): boolean => e instanceof Prisma.PrismaClientKnownRequestError && e.code === "P2002";

/** Prisma's own codes for "cannot reach / lost / saturated the database". */
const UNREACHABLE_CODES = new Set(["P1001", "P1002", "P1003", "P1008", "P1017", "P2024", "P2037"]);
/** Driver-adapter error kinds that mean the database, not the query, is the problem. */
const UNREACHABLE_KINDS = new Set([
  "DatabaseNotReachable",
  "DatabaseDoesNotExist",
  "DatabaseAccessDenied",
  "ConnectionClosed",
  "TlsConnectionError",
  "AuthenticationFailed",
  "TooManyConnections",
  "SocketTimeout",
]);
/** SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57P0x shutdown / cannot connect now. */
const UNREACHABLE_SQLSTATE = /^(08|53|57P0)/;

interface AdapterCause {
  kind?: string;
  code?: string;
  severity?: string;
}

/**
 * True when an error says Postgres is down, unreachable or dropped our connection (not that the query
 * was wrong): such a request must answer 503, never a 404 or a 500 that blames the data.
 */
export function isDatabaseUnavailable(e: unknown): boolean {
  if (e instanceof Prisma.PrismaClientInitializationError) return true;
  if (e instanceof Prisma.PrismaClientKnownRequestError) {
    if (UNREACHABLE_CODES.has(e.code)) return true;
    const cause = (e.meta?.driverAdapterError as { cause?: AdapterCause } | undefined)?.cause;
    if (cause?.kind && UNREACHABLE_KINDS.has(cause.kind)) return true;
    // A FATAL postgres error ends the session (e.g. the database stopped accepting connections).
    if (
      cause?.kind === "postgres" &&
      (cause.severity === "FATAL" || cause.severity === "PANIC" || UNREACHABLE_SQLSTATE.test(cause.code ?? ""))
    )
      return true;
  }
  // Raw pg (the submit path's own pool, src/services/ingest-store.ts): the same severities and SQLSTATE classes.
  if (e instanceof pg.DatabaseError && (e.severity === "FATAL" || e.severity === "PANIC" || UNREACHABLE_SQLSTATE.test(e.code ?? "")))
    return true;
  const msg = String((e as Error | undefined)?.message ?? "");
  return (
    /ECONNREFUSED|ECONNRESET|Connection terminated|Can't reach database server|timeout exceeded when trying to connect/.test(msg) &&
    !/redis|6379/i.test(msg)
  );
}
