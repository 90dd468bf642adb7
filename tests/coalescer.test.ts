import { describe, expect, it } from "vitest";
import { Coalescer } from "../src/lib/coalescer.ts";

const tick = () => new Promise((r) => setTimeout(r, 5));

/** A batch function that records its batches and answers each item doubled, failing on a negative one. */
function recorder() {
  const batches: number[][] = [];
  const singles: number[] = [];
  const runBatch = async (items: number[]) => {
    batches.push(items);
    await tick();
    if (items.some((i) => i < 0)) throw new Error("batch refused");
    return items.map((i) => i * 2);
  };
  const runOne = async (i: number) => {
    singles.push(i);
    await tick();
    if (i < 0) throw new Error(`bad item ${i}`);
    return i * 2;
  };
  return { batches, singles, runBatch, runOne };
}

describe("Coalescer", () => {
  it("sends a lone call at once, by itself", async () => {
    const r = recorder();
    const c = new Coalescer(r.runBatch, r.runOne, { maxBatch: 8, maxInFlight: 1 });
    expect(await c.run(3)).toBe(6);
    expect(r.singles).toEqual([3]);
    expect(r.batches).toEqual([]);
  });

  it("gathers the calls that arrive while one is in flight into the next batch, up to maxBatch, in order", async () => {
    const r = recorder();
    const c = new Coalescer(r.runBatch, r.runOne, { maxBatch: 3, maxInFlight: 1 });
    const out = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => c.run(i)));
    expect(out).toEqual([2, 4, 6, 8, 10, 12]);
    expect(r.singles).toEqual([1]);
    expect(r.batches).toEqual([
      [2, 3, 4],
      [5, 6],
    ]);
  });

  it("keeps at most maxInFlight statements going", async () => {
    let now = 0;
    let most = 0;
    const track = async <T>(fn: () => Promise<T>) => {
      most = Math.max(most, ++now);
      try {
        return await fn();
      } finally {
        now--;
      }
    };
    const r = recorder();
    const c = new Coalescer(
      (items: number[]) => track(() => r.runBatch(items)),
      (i: number) => track(() => r.runOne(i)),
      { maxBatch: 2, maxInFlight: 2 },
    );
    expect(await Promise.all([1, 2, 3, 4, 5, 6, 7].map((i) => c.run(i)))).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(most).toBe(2);
    expect(r.singles).toEqual([1, 2, 7]);
    expect(r.batches).toEqual([
      [3, 4],
      [5, 6],
    ]);
  });

  it("runs a failed batch's items one by one: only the bad one fails, with its own error", async () => {
    const r = recorder();
    const c = new Coalescer(r.runBatch, r.runOne, { maxBatch: 8, maxInFlight: 1 });
    const out = await Promise.allSettled([1, 2, -3, 4].map((i) => c.run(i)));
    expect(out.map((o) => (o.status === "fulfilled" ? o.value : (o.reason as Error).message))).toEqual([2, 4, "bad item -3", 8]);
    expect(r.batches).toEqual([[2, -3, 4]]);
    expect(r.singles).toEqual([1, 2, -3, 4]);
  });
});
