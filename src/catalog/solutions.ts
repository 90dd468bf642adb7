import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { evaluateExpression } from "../../graders/params.ts";
import type { Params } from "../../graders/types.ts";

/**
 * Reference and wrong answers kept in `<problem>/solutions/` (never loaded by the catalog):
 *   reference.json | reference.onnx | reference.ts     full marks
 *   wrong*.json    | wrong*.onnx    | wrong*.ts        less than full marks
 * JSON holds the answer itself; a string starting with "=" is a mathjs expression in the student's
 * parameters (e.g. {"value": "=S*S*(B*5+C)"}), so randomised problems have one reference for everyone.
 * A .ts solution is code, as a student's would be: `export default (params) => answer` (e.g. a fit).
 */
export interface Solution {
  name: string;
  kind: "reference" | "wrong";
  /** JSON answers (still templates: see resolveAnswer). */
  answer?: unknown;
  /** ONNX answers. */
  model?: Uint8Array;
  /** Code answers: computes the answer from the student's parameters. */
  solve?: (params: Params) => unknown;
}

export async function readSolutions(problemDir: string): Promise<Solution[]> {
  const dir = path.join(problemDir, "solutions");
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  const out: Solution[] = [];
  for (const name of names) {
    const kind = name.startsWith("reference") ? "reference" : name.startsWith("wrong") ? "wrong" : null;
    if (!kind) continue;
    const file = path.join(dir, name);
    if (name.endsWith(".onnx")) out.push({ name, kind, model: new Uint8Array(await readFile(file)) });
    else if (name.endsWith(".json")) out.push({ name, kind, answer: JSON.parse(await readFile(file, "utf8")) });
    else if (name.endsWith(".ts")) out.push({ name, kind, solve: (await import(pathToFileURL(path.resolve(file)).href)).default });
  }
  return out;
}

/** The answer a solution gives for this student's parameters (not for model solutions). */
export function answerFor(solution: Solution, params: Params): unknown {
  return solution.solve ? solution.solve(params) : resolveAnswer(solution.answer, params);
}

/** Fills "=expression" strings with values computed from this student's parameters. */
export function resolveAnswer(template: unknown, params: Params): unknown {
  if (typeof template === "string" && template.startsWith("=")) return evaluateExpression(template.slice(1), params);
  if (Array.isArray(template)) return template.map((t) => resolveAnswer(t, params));
  if (template && typeof template === "object")
    return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, resolveAnswer(v, params)]));
  return template;
}
