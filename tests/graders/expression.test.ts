import { describe, expect, it } from "vitest";
import { expressionGrader } from "../../graders/expression.ts";
import { configErrors, grade } from "./helpers.ts";

const config = { answer: "x^2 * sin(t)", variables: { x: { min: -2, max: 2 }, t: { min: 0, max: 3 } } };

describe("expression grader", () => {
  it("accepts equivalent forms", async () => {
    for (const expression of ["x^2*sin(t)", "sin(t) x x", "x*x*sin(t) + 0", "(x^2)*(2*sin(t/2)*cos(t/2))", "abs(x)^2 * sin(t)"]) {
      const r = await grade(expressionGrader, config, { expression });
      expect(r, expression).toMatchObject({ status: "graded", score: 10 });
      expect(r.feedback.tests[0]!.message).toMatch(/20 random points/);
    }
  });

  it("gives 0 to a different formula, saying where but not the expected value", async () => {
    const r = await grade(expressionGrader, config, { expression: "x^2 * cos(t)" });
    expect(r).toMatchObject({ status: "graded", score: 0 });
    expect(r.feedback.summary).toMatch(/^Not equivalent to the expected expression \(it differs at x = -?[\d.]+, t = [\d.]+\)\.$/);
    // Close but outside rtol 1e-6.
    expect((await grade(expressionGrader, config, { expression: "1.0001 * x^2 * sin(t)" })).score).toBe(0);
  });

  it("rejects unparsable input with the parser's position", async () => {
    const r = await grade(expressionGrader, config, { expression: "x^2 * sin(t" });
    expect(r.status).toBe("rejected");
    expect(r.feedback.summary).toMatch(/Could not parse the expression: .*character 12/);
  });

  it("rejects unknown symbols, naming the symbol and the allowed variables", async () => {
    const r = await grade(expressionGrader, config, { expression: "y^2 * sin(t)" });
    expect(r.status).toBe("rejected");
    expect(r.feedback.summary).toBe('Unknown symbol "y". Allowed variables: x, t.');
  });

  it("rejects constructs outside the formula language", async () => {
    const cases: [string, RegExp][] = [
      ["foo(x)", /Unknown function "foo"/],
      ["sin x", /write sin\(\.\.\.\)/],
      ["x = 2", /Assignments/],
      ["[x, t]", /Matrices/],
      ["x < t", /operator "<"/],
      ["", /empty/],
      ["sin(x, t)", /could not be evaluated.*Too many arguments/],
      ["import({}, {})", /Unknown function "import"/],
    ];
    for (const [expression, message] of cases) {
      const r = await grade(expressionGrader, config, { expression });
      expect(r.status, expression).toBe("rejected");
      expect(r.feedback.summary, expression).toMatch(message);
    }
  });

  it("skips points outside the reference's domain but fails a student who is not finite where it is", async () => {
    const logConfig = { answer: "log(x)", variables: { x: { min: -1, max: 1 } } };
    expect((await grade(expressionGrader, logConfig, { expression: "log(x)" })).score).toBe(10);
    expect((await grade(expressionGrader, logConfig, { expression: "log(abs(x))" })).score).toBe(10);
    const poleConfig = { answer: "x", variables: { x: { min: 0, max: 1 } } };
    expect((await grade(expressionGrader, poleConfig, { expression: "x * (x/x)" })).score).toBe(10);
    expect((await grade(expressionGrader, poleConfig, { expression: "x + 0 * log(x - 0.5)" })).score).toBe(0);
  });

  it("uses the params of the student's variant", async () => {
    const param = { answer: "a * x", variables: { x: { min: 0, max: 1 } }, params: { a: { choices: [2, 3] } } };
    const results = await Promise.all(
      ["s1", "s2", "s3", "s4", "s5", "s6"].map(async (seed) => {
        const a = expressionGrader.params!(expressionGrader.configSchema.parse(param), seed).a;
        const right = await grade(expressionGrader, param, { expression: `${a} x` }, { seed });
        const wrong = await grade(expressionGrader, param, { expression: `${a === 2 ? 3 : 2} x` }, { seed });
        return [right.score, wrong.score, a];
      }),
    );
    for (const [right, wrong] of results) expect([right, wrong]).toEqual([10, 0]);
    expect(new Set(results.map((r) => r[2])).size).toBe(2);
  });

  it("is deterministic per seed", async () => {
    const a = await grade(expressionGrader, config, { expression: "x^2 * cos(t)" }, { seed: "same" });
    const b = await grade(expressionGrader, config, { expression: "x^2 * cos(t)" }, { seed: "same" });
    expect(a).toEqual(b);
  });

  it("answerFormat lists variables and params only", () => {
    const format = expressionGrader.answerFormat(expressionGrader.configSchema.parse(config), "s");
    expect(format).toEqual({ kind: "expression", variables: ["x", "t"], params: {} });
  });

  it("reports config mistakes", () => {
    expect(configErrors(expressionGrader, { ...config, answer: "x^2 * sin(q)" }).join()).toMatch(/answer: Unknown symbol "q"/);
    expect(configErrors(expressionGrader, { ...config, variables: { x: { min: 1, max: 1 } } }).join()).toMatch(/min must be less than max/);
    expect(configErrors(expressionGrader, { ...config, variables: { "1x": { min: 0, max: 1 } } }).join()).toMatch(/identifier/);
    expect(configErrors(expressionGrader, { ...config, variables: {} }).join()).toMatch(/at least one variable/);
    expect(configErrors(expressionGrader, { ...config, sample: 5 }).join()).toMatch(/sample/);
    expect(configErrors(expressionGrader, { ...config, params: { x: { min: 0, max: 1 } } }).join()).toMatch(/also declared as params: x/);
  });
});
