import type { Grader } from "../../graders/types.ts";
import type { ModelSpec } from "../../graders/onnx/types.ts";
import { preflight, type PreflightOptions, type PreflightResult } from "../grading/onnx/preflight.ts";
import { AppError, BadRequestError, PayloadTooLargeError, UnprocessableError } from "../errors.ts";
import { sha256 } from "../lib/crypto.ts";

export interface UploadedModel {
  bytes: Uint8Array;
  filename?: string;
}

/** A validated answer, ready to store; `blob` is the uploaded model for model problems. */
export interface PreparedAnswer {
  answer: unknown;
  blob?: { sha256: string; bytes: Uint8Array };
  requestHash: string;
}

interface Problem {
  slug: string;
  graderType: string;
  graderConfig: unknown;
}

interface Limits {
  maxBytes: number;
  preflight: PreflightOptions;
}

/** Runs preflight somewhere: in this thread (CLI) or in a pool thread (the API). */
export type PreflightRunner = (bytes: Uint8Array, spec: ModelSpec, opts: PreflightOptions) => PreflightResult | Promise<PreflightResult>;

/**
 * What the problem accepts, known before any body is read: a model file (with its byte limit, the
 * smaller of the problem's budget and the server's MODEL_MAX_BYTES) or a JSON answer. Refuses the
 * wrong kind of request with 415 so an upload to a JSON problem is never read.
 */
export function acceptedAnswer(
  grader: Grader,
  problem: Problem,
  sendsModel: boolean,
  serverMaxBytes: number,
): { modelMaxBytes: number | null } {
  const spec = modelSpec(grader, problem);
  if (spec && !sendsModel)
    throw new AppError(415, "MODEL_REQUIRED", "This problem takes an ONNX model: upload it as the multipart/form-data file field `model`.");
  if (!spec && sendsModel)
    throw new AppError(415, "JSON_ANSWER_REQUIRED", `This '${problem.graderType}' problem takes a JSON body {answer}, not a file.`);
  return { modelMaxBytes: spec ? Math.min(serverMaxBytes, spec.budget.maxBytes) : null };
}

const modelSpec = (grader: Grader, problem: Problem): ModelSpec | null =>
  grader.modelSpec ? grader.modelSpec(grader.configSchema.parse(problem.graderConfig)) : null;

/**
 * Checks an answer against its problem before anything is stored: JSON answers against the grader's
 * answer schema, uploaded models by preflight (parse, signature, budget) so a hostile or mismatched
 * file is refused in the request, with a reason, before any session or row exists. Synchronous: for
 * the CLI; the API uses prepareAnswerOffLoop.
 */
export function prepareAnswer(
  grader: Grader,
  problem: Problem,
  input: { answer?: unknown; model?: UploadedModel },
  limits: Limits,
): PreparedAnswer {
  const { modelMaxBytes } = acceptedAnswer(grader, problem, Boolean(input.model), limits.maxBytes);
  if (!input.model) return jsonAnswer(grader, problem, input.answer);
  const spec = modelSpec(grader, problem)!;
  checkSize(input.model.bytes, modelMaxBytes!);
  return modelAnswer(problem, input.model, preflight(input.model.bytes, spec, limits.preflight));
}

/** prepareAnswer with the model's preflight handed to `runPreflight` (a pool thread), off the caller's event loop. */
export async function prepareAnswerOffLoop(
  grader: Grader,
  problem: Problem,
  input: { answer?: unknown; model?: UploadedModel },
  limits: Limits,
  runPreflight: PreflightRunner,
): Promise<PreparedAnswer> {
  const { modelMaxBytes } = acceptedAnswer(grader, problem, Boolean(input.model), limits.maxBytes);
  if (!input.model) return jsonAnswer(grader, problem, input.answer);
  const spec = modelSpec(grader, problem)!;
  checkSize(input.model.bytes, modelMaxBytes!);
  return modelAnswer(problem, input.model, await runPreflight(input.model.bytes, spec, limits.preflight));
}

function jsonAnswer(grader: Grader, problem: Problem, answer: unknown): PreparedAnswer {
  const parsed = grader.answerSchema.safeParse(answer);
  if (!parsed.success)
    throw new BadRequestError("INVALID_ANSWER", `This answer does not fit a '${problem.graderType}' problem.`, {
      issues: parsed.error.issues.map((i) => ({ path: ["answer", ...i.path].join("."), message: i.message })),
    });
  return { answer: parsed.data, requestHash: sha256(JSON.stringify({ problem: problem.slug, answer: parsed.data ?? null })) };
}

function checkSize(bytes: Uint8Array, limit: number) {
  if (bytes.byteLength > limit)
    throw new PayloadTooLargeError(`The model is ${bytes.byteLength} bytes; this problem accepts at most ${limit}.`);
  if (bytes.byteLength === 0) throw new BadRequestError("EMPTY_MODEL", "The uploaded `model` file is empty.");
}

function modelAnswer(problem: Problem, model: UploadedModel, check: PreflightResult): PreparedAnswer {
  if (!check.ok) throw new UnprocessableError("MODEL_REJECTED", check.message, { reason: check.code });
  const { bytes, filename } = model;
  const hash = sha256(bytes);
  return {
    answer: { model: { sha256: hash, size: bytes.byteLength, ...(filename ? { filename: filename.slice(0, 255) } : {}) } },
    blob: { sha256: hash, bytes },
    requestHash: sha256(JSON.stringify({ problem: problem.slug, model: hash })),
  };
}
