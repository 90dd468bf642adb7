import { describe, expect, it } from "vitest";
import { rng } from "../../graders/random.ts";

const draw = (seed: string, label: string) => Array.from({ length: 5 }, rng(seed, label).next);

describe("rng", () => {
  it("is deterministic per seed and label", () => {
    expect(draw("s1", "a")).toEqual(draw("s1", "a"));
  });

  it("differs across seeds and across labels", () => {
    expect(draw("s1", "a")).not.toEqual(draw("s2", "a"));
    expect(draw("s1", "a")).not.toEqual(draw("s1", "b"));
    // The key is unambiguous: ("ab", "c") is not ("a", "bc").
    expect(draw("ab", "c")).not.toEqual(draw("a", "bc"));
  });

  it("keeps helpers within their ranges", () => {
    const r = rng("ranges");
    for (let i = 0; i < 500; i++) {
      const u = r.uniform(-2, 3);
      expect(u).toBeGreaterThanOrEqual(-2);
      expect(u).toBeLessThan(3);
      const k = r.int(1, 6);
      expect(Number.isInteger(k) && k >= 1 && k <= 6).toBe(true);
      expect(["a", "b"]).toContain(r.pick(["a", "b"]));
    }
  });

  it("hits both ends of int()", () => {
    const r = rng("ends");
    const seen = new Set(Array.from({ length: 200 }, () => r.int(0, 2)));
    expect([...seen].sort()).toEqual([0, 1, 2]);
  });

  it("draws normals with about the right mean and spread", () => {
    const r = rng("normal");
    const xs = Array.from({ length: 4000 }, () => r.normal(5, 2));
    const mean = xs.reduce((a, b) => a + b) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    expect(mean).toBeCloseTo(5, 0);
    expect(Math.abs(sd - 2)).toBeLessThan(0.15);
  });

  it("shuffles into a permutation without touching the input", () => {
    const input = [1, 2, 3, 4, 5, 6];
    const out = rng("shuffle").shuffle(input);
    expect(input).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...out].sort()).toEqual(input);
    expect(rng("shuffle").shuffle(input)).toEqual(out);
  });

  it("refuses impossible requests", () => {
    expect(() => rng("x").pick([])).toThrow(RangeError);
    expect(() => rng("x").int(3, 1)).toThrow(RangeError);
  });
});
