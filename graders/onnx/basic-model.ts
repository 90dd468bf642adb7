import { z } from "zod";
import { rejected } from "../result.ts";
import type { GradeInput, GradeResult } from "../types.ts";
import { faultToResult, requireModel, withSession } from "./session.ts";
import type { Dim, ModelSession, ModelSpec } from "./types.ts";

/** Helpers shared by onnx-function, onnx-encoder-objective and onnx-classifier. */

/** A config's fixed `seed:`; without it the inputs follow the student's seed. */
export const seedField = z.union([z.string().min(1).max(200), z.number().int()]).optional();
export const inputSeedOf = (configSeed: string | number | undefined, studentSeed: string): string =>
  configSeed === undefined ? studentSeed : String(configSeed);

/** A file of the problem folder, named relative to it. */
export const fileField = z
  .string()
  .min(1)
  .max(300)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), "must be a file inside the problem folder");

export const privateFile = (input: GradeInput<unknown, unknown>, name: string): Uint8Array | undefined =>
  input.privateData.get(name.replace(/^\.\//, ""));

/** The public part of every model problem's answerFormat (API.md): signature, budget, then grader extras. */
export function modelFormat(spec: ModelSpec, extra: Record<string, unknown>): Record<string, unknown> {
  return { inputs: spec.inputs, outputs: spec.outputs, ...spec.budget, ...extra };
}

/** Fixed dims, with named ones looked up in `free`. */
export function resolveShape(shape: readonly Dim[], free: Readonly<Record<string, number>>): number[] {
  return shape.map((d) => (typeof d === "number" ? d : free[d]!));
}

const list = (names: readonly string[]): string => (names.length ? names.map((n) => `'${n}'`).join(", ") : "none");

/**
 * Preflight checks the signature in production; this repeats the cheap part so that a model with a
 * misnamed input gets this message rather than onnxruntime's, whatever runtime grades it.
 */
export function signatureProblem(session: ModelSession, spec: Pick<ModelSpec, "inputs" | "outputs">): string | undefined {
  const want = spec.inputs.map((i) => i.name);
  const extra = session.inputNames.filter((n) => !want.includes(n));
  const missing = want.filter((n) => !session.inputNames.includes(n));
  if (missing.length > 0 || extra.length > 0)
    return `The model's inputs are ${list(session.inputNames)}; this problem feeds exactly ${list(want)}. Name them when exporting (e.g. input_names in torch.onnx.export).`;
  const absent = spec.outputs.map((o) => o.name).filter((n) => !session.outputNames.includes(n));
  if (absent.length > 0) return `The model has no output named ${list(absent)} (its outputs: ${list(session.outputNames)}).`;
  return undefined;
}

/**
 * Opens the student's model, checks its signature, and runs `fn`; every result (rejections included)
 * carries the provenance, and a ModelFault becomes a `rejected` result that says what went wrong.
 */
export async function gradeModel(
  input: GradeInput<unknown, unknown>,
  spec: Pick<ModelSpec, "inputs" | "outputs">,
  inputSeed: string,
  fn: (session: ModelSession) => Promise<GradeResult>,
): Promise<GradeResult> {
  const { model, runtime } = requireModel(input);
  try {
    return await withSession(
      runtime,
      model,
      "submission",
      async (session) => {
        const problem = signatureProblem(session, spec);
        let result: GradeResult;
        try {
          result = problem ? rejected(input.points, problem) : await fn(session);
        } catch (err) {
          result = faultToResult(input.points, err); // a fault mid-run still says which provider ran it
        }
        return { ...result, provenance: { executionProvider: session.executionProvider, ortVersion: runtime.ortVersion, inputSeed } };
      },
      input.signal,
    );
  } catch (err) {
    return faultToResult(input.points, err); // the model did not even load
  }
}

/** "y[0, 2]" for flat index 2 of dims [N, 3]. */
export function elementName(name: string, flat: number, dims: readonly number[]): string {
  if (dims.length === 0) return name;
  const idx: number[] = [];
  for (let k = dims.length - 1; k >= 0; k--) {
    idx.unshift(flat % dims[k]!);
    flat = Math.floor(flat / dims[k]!);
  }
  return `${name}[${idx.join(", ")}]`;
}
