import { LRUCache } from "lru-cache";
import { z } from "zod";
import { tidy } from "./format.ts";
import { compileExpression, RESERVED_NAMES, type Tensor } from "./math.ts";
import { rng, type Rng } from "./random.ts";
import type { Params } from "./types.ts";

/**
 * Randomised parameters (numeric, tensor and expression graders). In problem.yaml:
 *
 *   params:
 *     a: {min: 1, max: 5, step: 1}        # a number on the grid min, min+step, ..., <= max
 *     r: {min: 0.1, max: 0.9}             # continuous, rounded to 4 significant digits
 *     k: {choices: [2, 3, 5]}
 *     X: {shape: [3, 2], min: -3, max: 3, step: 1}   # 3x2 matrix; shape [n] is a vector
 *
 * Continuous draws are rounded so that the number the statement shows is exactly the
 * number the grader computes with.
 */

const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]*$/;
/** Keeps a matrix parameter small enough to show in a statement. */
const MAX_DIM = 20;

const range = { min: z.number(), max: z.number(), step: z.number().positive().optional() };
const rangeChecks = <T extends { min: number; max: number }>(r: T, ctx: z.RefinementCtx) => {
  if (r.min > r.max) ctx.addIssue({ code: "custom", message: `min (${r.min}) is greater than max (${r.max})` });
};

const scalarSpec = z.strictObject(range).superRefine(rangeChecks);
const choiceSpec = z.strictObject({ choices: z.array(z.number()).min(1) });
const dim = () => z.number().int().min(1).max(MAX_DIM);
const arraySpec = z.strictObject({ shape: z.array(dim()).min(1).max(2), ...range }).superRefine(rangeChecks);

/**
 * The kind is chosen by key (`choices`, `shape`, else a range) rather than by a plain
 * union, so that a typo is reported against the kind the instructor meant instead of
 * as zod's bare "Invalid input".
 */
export const paramSpecSchema = z.custom<unknown>().transform((value, ctx) => {
  const has = (key: string) => typeof value === "object" && value !== null && key in value;
  const schema = has("choices") ? choiceSpec : has("shape") ? arraySpec : scalarSpec;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data as ParamSpecValue;
  for (const issue of parsed.error.issues) {
    ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
  }
  return z.NEVER;
});
type ParamSpecValue = z.output<typeof scalarSpec> | z.output<typeof choiceSpec> | z.output<typeof arraySpec>;
export type ParamSpec = ParamSpecValue;

/** Why `name` cannot name a parameter or variable, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (!IDENTIFIER.test(name)) return "must be an identifier (a letter, then letters, digits or _)";
  if (RESERVED_NAMES.has(name)) return "is a reserved name (a function, constant or keyword)";
  return undefined;
}

/**
 * A map from parameter/variable names to `value`. Names are checked here rather than
 * by a key schema because zod reports a bad record key only as "Invalid key in record".
 */
export function namedRecord<T extends z.ZodType>(value: T) {
  return z.record(z.string(), value).superRefine((record, ctx) => {
    for (const name of Object.keys(record)) {
      const problem = nameProblem(name);
      if (problem) ctx.addIssue({ code: "custom", path: [name], message: `"${name}" ${problem}` });
    }
  });
}

export const paramsSpecSchema = namedRecord(paramSpecSchema);
export type ParamsSpec = z.infer<typeof paramsSpecSchema>;

function drawNumber(spec: { min: number; max: number; step?: number | undefined }, r: Rng): number {
  // Continuous draws keep 4 significant digits; steps lose only binary noise (0.1 * 3).
  if (spec.step === undefined) return tidy(r.uniform(spec.min, spec.max), 4);
  const steps = Math.floor((spec.max - spec.min) / spec.step + 1e-9);
  return tidy(spec.min + spec.step * r.int(0, steps));
}

/** This student's parameter values; each parameter draws from its own stream, so adding one shifts no other. */
export function sampleParams(spec: ParamsSpec | undefined, seed: string): Params {
  const out: Params = {};
  for (const [name, p] of Object.entries(spec ?? {})) {
    const r = rng(seed, `params/${name}`);
    if ("choices" in p) out[name] = r.pick(p.choices);
    else if ("shape" in p) {
      const [first = 1, second] = p.shape;
      const row = (): number[] => Array.from({ length: second ?? first }, () => drawNumber(p, r));
      out[name] = second === undefined ? row() : Array.from({ length: first }, row);
    } else out[name] = drawNumber(p, r);
  }
  return out;
}

/**
 * Evaluates an instructor's expression (e.g. "X * transpose(X)") with the given values.
 * Throws on anything the expression language refuses; the graders check expressions
 * when the problem is loaded, so a throw here is a problem bug, not a student's.
 */
export function evaluateExpression(expr: string, scope: Params | Record<string, Tensor>): Tensor {
  const compiled = compileExpression(expr, { symbols: Object.keys(scope), matrix: true });
  if (!compiled.ok) throw new Error(compiled.message);
  return compiled.evaluate(new Map(Object.entries(scope)));
}

/**
 * Config-time check of an instructor expression: it must parse, use only the declared
 * names, and evaluate (for one fixed sample of the parameters) to a finite result, a
 * single number when `scalar`. `variables` are extra scalar names (the expression
 * grader's); a formula in variables may be outside its domain at the one point tried
 * (log(x) at x = 0), so `finite: false` skips that part of the check.
 * Returns an error message, or undefined when the expression is fine.
 */
export function checkExpression(
  expr: string,
  spec: ParamsSpec | undefined,
  options: { scalar?: boolean; finite?: boolean; variables?: Record<string, number> } = {},
): string | undefined {
  // Config schemas run this check, and stored configs are parsed wherever a problem is read (the
  // API's statements, the worker's cache): the same expression is evaluated once per process.
  const key = JSON.stringify([expr, spec ?? null, options]);
  const hit = checked.get(key);
  if (hit !== undefined) return hit || undefined;
  const problem = checkOnce(expr, spec, options);
  checked.set(key, problem ?? "");
  return problem;
}
/** "" means the expression passed. Bounded by characters too: an uploaded expression may be megabytes long. */
const checked = new LRUCache<string, string>({ max: 1000, maxSize: 4_000_000, sizeCalculation: (v, k) => k.length + v.length + 1 });

function checkOnce(
  expr: string,
  spec: ParamsSpec | undefined,
  options: { scalar?: boolean; finite?: boolean; variables?: Record<string, number> },
): string | undefined {
  const scope = { ...sampleParams(spec, "config-check"), ...options.variables };
  const compiled = compileExpression(expr, { symbols: Object.keys(scope), matrix: true });
  if (!compiled.ok) return compiled.message;
  let value: Tensor;
  try {
    value = compiled.evaluate(new Map(Object.entries(scope)));
  } catch (err) {
    return `cannot be evaluated: ${(err as Error).message}`;
  }
  if (options.scalar && typeof value !== "number") return "must evaluate to a single number, not an array";
  const finite = (t: Tensor): boolean => (typeof t === "number" ? Number.isFinite(t) : t.every(finite));
  if (options.finite !== false && !finite(value)) return "is not finite for a sample of the parameters";
  return undefined;
}

/** LaTeX for a number: binary noise removed (0.30000000000000004 → 0.3), powers of ten spelled out. */
export function renderNumber(x: number): string {
  const text = String(tidy(x));
  const m = /^(-?[\d.]+)e([+-]\d+)$/.exec(text);
  if (!m) return text;
  const exponent = Number(m[2]);
  return m[1] === "1" ? `10^{${exponent}}` : `${m[1]} \\times 10^{${exponent}}`;
}

/**
 * LaTeX for a parameter value. A matrix is a bmatrix; a vector (shape [n]) is a COLUMN
 * bmatrix, the usual convention in the course's notation (write `{{v}}^\top` for a row).
 */
export function renderValue(value: Params[string]): string {
  if (typeof value === "number") return renderNumber(value);
  const rows = value.map((row) => (typeof row === "number" ? renderNumber(row) : row.map(renderNumber).join(" & ")));
  return `\\begin{bmatrix} ${rows.join(" \\\\ ")} \\end{bmatrix}`;
}

/**
 * Replaces `{{name}}` (spaces inside the braces allowed) with the parameter's LaTeX.
 * The text is inserted bare, so put matrices inside `$...$`. Unknown names are left as
 * they are, so that a statement's own `{{...}}` survives.
 */
export function renderStatement(markdown: string, params: Params): string {
  return markdown.replace(/\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g, (whole, name: string) =>
    Object.hasOwn(params, name) ? renderValue(params[name]!) : whole,
  );
}
