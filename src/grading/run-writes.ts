import type { Db } from "../db.ts";
import { Coalescer } from "../lib/coalescer.ts";
import { claimMany, finishMany, type Claimed, type ClaimRequest, type FinishRequest } from "./states.ts";

/** The two writes of every grading run: its claim and its finish (states.ts has their meaning). */
export interface RunWrites {
  claim(asked: ClaimRequest): Promise<Claimed | null>;
  finish(asked: FinishRequest): Promise<{ lmsLinked: boolean } | null>;
}

/** One statement per call. */
export const directRunWrites = (db: Db): RunWrites => ({
  claim: async (asked) => (await claimMany(db, [asked]))[0]!,
  finish: async (asked) => (await finishMany(db, [asked]))[0]!,
});

/**
 * A worker's claims and finishes, coalesced across its concurrent jobs: under load, the round trips to Postgres
 * and its commits (the worker's main cost for quick answers) are shared by up to `maxBatch` runs each. Every run
 * keeps its own precondition in the statement, so a batch changes nothing of what each one may write.
 */
export function coalescedRunWrites(db: Db, maxBatch: number): RunWrites {
  const direct = directRunWrites(db);
  if (maxBatch <= 1) return direct;
  const opts = { maxBatch, maxInFlight: 2 };
  const claims = new Coalescer((all: ClaimRequest[]) => claimMany(db, all), direct.claim, opts);
  const finishes = new Coalescer((all: FinishRequest[]) => finishMany(db, all), direct.finish, opts);
  return { claim: (asked) => claims.run(asked), finish: (asked) => finishes.run(asked) };
}
