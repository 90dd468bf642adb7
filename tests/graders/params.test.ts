import { describe, expect, it } from "vitest";
import {
  checkExpression,
  evaluateExpression,
  paramsSpecSchema,
  renderNumber,
  renderStatement,
  sampleParams,
} from "../../graders/params.ts";
import { ExpressionTooLarge, MAX_ELEMENTS, MAX_WORK } from "../../graders/math.ts";

const spec = paramsSpecSchema.parse({
  a: { min: 1, max: 9, step: 1 },
  r: { min: 0.1, max: 0.9 },
  k: { choices: [2, 3, 5] },
  h: { min: 0, max: 1, step: 0.1 },
  X: { shape: [3, 2], min: -3, max: 3, step: 1 },
  v: { shape: [4], min: 0, max: 1 },
});

describe("sampleParams", () => {
  it("is deterministic per seed", () => {
    expect(sampleParams(spec, "alice")).toEqual(sampleParams(spec, "alice"));
  });

  it("differs across seeds", () => {
    const seeds = ["alice", "bob", "carol", "dave", "erin"];
    const distinct = new Set(seeds.map((s) => JSON.stringify(sampleParams(spec, s))));
    expect(distinct.size).toBe(seeds.length);
    // Even a single 1..9 integer takes several values over a class.
    const as = new Set(Array.from({ length: 40 }, (_, i) => sampleParams(spec, `s${i}`).a));
    expect(as.size).toBeGreaterThan(4);
  });

  it("respects ranges, grids, choices and shapes", () => {
    for (let i = 0; i < 50; i++) {
      const p = sampleParams(spec, `seed-${i}`);
      expect(Number.isInteger(p.a) && (p.a as number) >= 1 && (p.a as number) <= 9).toBe(true);
      expect(p.r).toBeGreaterThanOrEqual(0.1);
      expect(p.r).toBeLessThanOrEqual(0.9);
      expect(Number((p.r as number).toPrecision(4))).toBe(p.r); // shown value == graded value
      expect([2, 3, 5]).toContain(p.k);
      // On the 0.1 grid without binary noise (0.30000000000000004).
      expect(String(p.h)).toMatch(/^(0(\.\d)?|1)$/);
      const X = p.X as number[][];
      expect(X).toHaveLength(3);
      for (const row of X) {
        expect(row).toHaveLength(2);
        for (const x of row) expect(Number.isInteger(x) && x >= -3 && x <= 3).toBe(true);
      }
      expect(p.v as number[]).toHaveLength(4);
    }
  });

  it("gives each parameter its own stream, so adding one shifts no other", () => {
    const before = sampleParams(paramsSpecSchema.parse({ a: { min: 0, max: 100, step: 1 } }), "s");
    const after = sampleParams(paramsSpecSchema.parse({ z: { min: 0, max: 1 }, a: { min: 0, max: 100, step: 1 } }), "s");
    expect(after.a).toBe(before.a);
  });

  it("returns {} without a spec", () => {
    expect(sampleParams(undefined, "s")).toEqual({});
  });
});

describe("paramsSpecSchema", () => {
  const errors = (value: unknown) => {
    const r = paramsSpecSchema.safeParse(value);
    expect(r.success).toBe(false);
    return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
  };

  it("rejects names that are not identifiers or are reserved", () => {
    expect(errors({ "2x": { min: 0, max: 1 } })).toMatch(/identifier/);
    expect(errors({ "a-b": { min: 0, max: 1 } })).toMatch(/identifier/);
    expect(errors({ sin: { min: 0, max: 1 } })).toMatch(/reserved/);
    expect(errors({ e: { min: 0, max: 1 } })).toMatch(/reserved/);
  });

  it("reports typos and bad ranges against the intended kind", () => {
    expect(errors({ a: { min: 0, mx: 1 } })).toMatch(/a/);
    expect(errors({ a: { min: 0, max: 1, stpe: 1 } })).toMatch(/stpe/);
    expect(errors({ a: { min: 2, max: 1 } })).toMatch(/min \(2\) is greater than max \(1\)/);
    expect(errors({ a: { min: 0, max: 1, step: 0 } })).toMatch(/a\.step/);
    expect(errors({ k: { choices: [] } })).toMatch(/k\.choices/);
    expect(errors({ X: { shape: [2, 2, 2], min: 0, max: 1 } })).toMatch(/X\.shape/);
    expect(errors({ X: { shape: [0], min: 0, max: 1 } })).toMatch(/X\.shape/);
  });
});

describe("evaluateExpression", () => {
  it("evaluates scalars and matrices with parameter values", () => {
    expect(evaluateExpression("a * b / 2", { a: 3, b: 4 })).toBe(6);
    expect(
      evaluateExpression("X * transpose(X)", {
        X: [
          [1, 2],
          [3, 4],
        ],
      }),
    ).toEqual([
      [5, 11],
      [11, 25],
    ]);
    expect(
      evaluateExpression("det(X)", {
        X: [
          [1, 2],
          [3, 4],
        ],
      }),
    ).toBeCloseTo(-2);
    expect(evaluateExpression("sigmoid(0) + relu(-1)", {})).toBe(0.5);
  });

  it("refuses anything outside the whitelist", () => {
    expect(() => evaluateExpression("import({}, {})", {})).toThrow(/Unknown function "import"/);
    expect(() => evaluateExpression('createUnit("foo")', {})).toThrow(/Unknown function/);
    expect(() => evaluateExpression('evaluate("1+1")', {})).toThrow(/Unknown function/);
    expect(() => evaluateExpression("f(x) = x", {})).toThrow(/not allowed/);
    expect(() => evaluateExpression("a = 1", {})).toThrow(/not allowed/);
    expect(() => evaluateExpression("5 cm", {})).toThrow(/Unknown symbol "cm"/);
    expect(() => evaluateExpression("a.constructor", { a: 1 })).toThrow(/property access/);
    expect(() => evaluateExpression("b + 1", { a: 1 })).toThrow(/Unknown symbol "b"/);
  });
});

describe("element limits (what an expression may build)", () => {
  const refused = (expr: string, scope: Record<string, number | number[][]> = {}) => {
    try {
      evaluateExpression(expr, scope);
    } catch (e) {
      expect(e).toBeInstanceOf(ExpressionTooLarge);
      return (e as Error).message;
    }
    throw new Error(`${expr} was not refused`);
  };

  it("refuses, before allocating, any builder whose result would pass MAX_ELEMENTS, naming the call and the size", () => {
    expect(MAX_ELEMENTS).toBe(1_000_000);
    expect(refused("sum(zeros(n, n))", { n: 50_000 })).toBe(
      "zeros(50000, 50000) would build 2,500,000,000 elements; an expression may build at most 1,000,000",
    );
    const cases: [string, RegExp][] = [
      ["ones(1001, 1000)", /^ones\(1001, 1000\) would build 1,001,000 elements/],
      ["zeros([2000, 2000])", /^zeros\(\[2000, 2000\]\) would build 4,000,000 elements/],
      ["identity(1001)", /^identity\(1001\) would build 1,002,001 elements/],
      ["kron(ones(2000, 1), ones(1, 2000))", /^kron\(<2000×1>, <1×2000>\) would build 4,000,000 elements/],
      ["reshape(ones(1, 10), [100000, 100])", /^reshape\(<1×10>, \[100000, 100\]\) would build 10,000,000 elements/],
      ["concat(ones(1000, 600), ones(1000, 600))", /^concat\(<1000×600>, <1000×600>\) would build 1,200,000 elements/],
      ["sum(1:2000000)", /^range\(1, 2000000\) would build 2,000,000 elements/],
      ["diag(1:1001)", /^diag\(<1001>\) would build 1,002,001 elements/],
      ["ones(2000, 1) * ones(1, 2000)", /^multiply\(<2000×1>, <1×2000>\) would build 4,000,000 elements/],
      ["ones(2000, 1) + ones(1, 2000)", /^add\(<2000×1>, <1×2000>\) would build 4,000,000 elements/],
      ["ones(2000, 1) .* ones(1, 2000)", /^dotMultiply\(<2000×1>, <1×2000>\) would build 4,000,000 elements/],
    ];
    for (const [expr, message] of cases) expect(refused(expr), expr).toMatch(message);
  });

  it("refuses an evaluation past MAX_WORK operations in all, so that re-checking a stored config stays cheap", () => {
    expect(MAX_WORK).toBe(10_000_000);
    expect(refused("sum(ones(300, 300) * ones(300, 300))")).toBe(
      "multiply(<300×300>, <300×300>) would take about 27,000,000 operations, past the 10,000,000 an expression may take in all",
    );
    expect(refused("det(ones(300, 300))")).toMatch(/^det\(<300×300>\) would take about 27,000,000 operations/);
    expect(refused("norm(ones(100, 100), 2)")).toMatch(/^norm\(<100×100>, 2\) would take about 30,000,000 operations/);
    // Cheap steps add up: five 1000×1000 sums are more than one evaluation may do.
    expect(refused("sum(ones(1000, 1000) + ones(1000, 1000) + ones(1000, 1000) + ones(1000, 1000) + ones(1000, 1000))")).toMatch(
      /past the 10,000,000 an expression may take in all/,
    );
    // The count starts again with every evaluation.
    for (let i = 0; i < 5; i++) expect(evaluateExpression("sum(ones(200, 200) * ones(200, 200))", {})).toBe(8_000_000);
  });

  it("refuses arguments and results past the limit however they were put together", () => {
    const A = Array.from({ length: 1000 }, () => Array.from({ length: 1000 }, () => 1));
    expect(refused("size([A, A])", { A })).toMatch(/^size was given an array of more than 1,000,000 elements/);
    expect(refused("[A, A]", { A })).toMatch(/^the result has more than 1,000,000 elements/);
  });

  it("allows everything up to the limit, with mathjs's own meaning (1-based, inclusive ranges) intact", () => {
    expect(evaluateExpression("sum(ones(1000, 1000))", {})).toBe(1_000_000);
    expect(evaluateExpression("size(1:1000000)", {})).toEqual([1_000_000]);
    const X = [
      [1, 2],
      [3, 4],
    ];
    expect(evaluateExpression("X[1:2, 1]", { X })).toEqual([1, 3]);
    expect(evaluateExpression("concat(X, X, 1)", { X })).toEqual([...X, ...X]);
    expect(evaluateExpression("sum(X, 1)", { X })).toEqual([4, 6]);
    expect(evaluateExpression("reshape(1:6, [2, 3])", {})).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(evaluateExpression("det(X * X)", { X })).toBeCloseTo(4);
    expect(evaluateExpression("size(diag(1:1000))", {})).toEqual([1000, 1000]);
  });
});

describe("checkExpression", () => {
  it("reports an allocation bomb as the reason the expression cannot be evaluated", () => {
    const bomb = paramsSpecSchema.parse({ n: { choices: [50_000] } });
    expect(checkExpression("sum(zeros(n, n))", bomb)).toBe(
      "cannot be evaluated: zeros(50000, 50000) would build 2,500,000,000 elements; an expression may build at most 1,000,000",
    );
  });

  it("accepts a good expression and explains a bad one", () => {
    expect(checkExpression("a + 1", spec)).toBeUndefined();
    expect(checkExpression("a +", spec)).toMatch(/parse.*character 4/);
    expect(checkExpression("q * 2", spec)).toMatch(/Unknown symbol "q"/);
    expect(checkExpression("X", spec, { scalar: true })).toMatch(/single number/);
    expect(checkExpression("1 / (a - a)", spec)).toMatch(/not finite/);
  });
});

describe("renderStatement", () => {
  it("substitutes numbers, matrices and vectors as LaTeX", () => {
    const params = {
      a: 3,
      r: 0.25,
      X: [
        [1, -2],
        [3, 4],
      ],
      v: [1, 2, 3],
    };
    expect(renderStatement("Let $a = {{a}}$, $r={{ r }}$.", params)).toBe("Let $a = 3$, $r=0.25$.");
    expect(renderStatement("$X = {{X}}$", params)).toBe("$X = \\begin{bmatrix} 1 & -2 \\\\ 3 & 4 \\end{bmatrix}$");
    // Vectors are columns.
    expect(renderStatement("{{v}}", params)).toBe("\\begin{bmatrix} 1 \\\\ 2 \\\\ 3 \\end{bmatrix}");
  });

  it("leaves unknown placeholders and other braces alone", () => {
    expect(renderStatement("{{b}} and {{a}} and {a} and {{ 1x }}", { a: 2 })).toBe("{{b}} and 2 and {a} and {{ 1x }}");
  });

  it("renders numbers tidily", () => {
    expect(renderNumber(0.1 + 0.2)).toBe("0.3");
    expect(renderNumber(-4)).toBe("-4");
    expect(renderNumber(1e-7)).toBe("10^{-7}");
    expect(renderNumber(2.5e-8)).toBe("2.5 \\times 10^{-8}");
    expect(renderNumber(6.02e23)).toBe("6.02 \\times 10^{23}");
  });
});
