/**
 * A grading worker's thread pool starts every thread with the pool and loads mathjs and the NLP model as each boots,
 * and warm() resolves only when all of them have (issue 12: an exam's first answers waited seconds for module loading).
 * The API's pool stays lazy: its threads load graders' modules on first use.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ThreadPool } from "../src/grading/threads/index.ts";

let pool: ThreadPool | undefined;
afterEach(() => pool?.close());

describe("ThreadPool.warm", () => {
  it("a grading worker's pool: every thread booted and preloaded, one warm task each", async () => {
    pool = new ThreadPool({ threads: 2, memoryMb: 256, timeoutMs: 10_000, preload: true });
    expect(await pool.warm()).toEqual({ threads: 2, preloaded: 2 });
    // A grade on the warm pool needs nothing loaded any more; the threads are the same ones.
    const before = pool.threadIds;
    const r = await pool.run({
      kind: "grade",
      graderType: "expression",
      config: { answer: "2*x", variables: { x: { min: 1, max: 2 } }, samples: 5 },
      privateData: new Map(),
      answer: { expression: "x + x" },
      seed: "s",
      points: 1,
    });
    expect(r).toMatchObject({ status: "graded", score: 1 });
    expect(pool.threadIds).toEqual(before);
  });

  it("the API's pool: nothing preloaded", async () => {
    pool = new ThreadPool({ threads: 1, memoryMb: 256, timeoutMs: 10_000 });
    expect(await pool.warm()).toEqual({ threads: 1, preloaded: 0 });
  });
});
