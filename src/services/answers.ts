import type { Grader } from "../../graders/types.ts";
import { preflight, type PreflightOptions } from "../grading/onnx/preflight.ts";
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

/**
 * Checks an answer against its problem before anything is stored: JSON answers against the grader's
 * answer schema, uploaded models by preflight (parse, signature, budget) so a hostile or mismatched
 * file is refused in the request, with a reason, before any session or row exists.
 */
export function prepareAnswer(
  grader: Grader,
  problem: Problem,
  input: { answer?: unknown; model?: UploadedModel },
  limits: { maxBytes: number; preflight: PreflightOptions },
): PreparedAnswer {
  const takesModel = Boolean(grader.modelSpec);
  if (takesModel && !input.model)
    throw new AppError(415, "MODEL_REQUIRED", "This problem takes an ONNX model: upload it as the multipart/form-data file field `model`.");
  if (!takesModel && input.model)
    throw new AppError(415, "JSON_ANSWER_REQUIRED", `This '${problem.graderType}' problem takes a JSON body {answer}, not a file.`);

  if (!input.model) {
    const parsed = grader.answerSchema.safeParse(input.answer);
    if (!parsed.success)
      throw new BadRequestError("INVALID_ANSWER", `This answer does not fit a '${problem.graderType}' problem.`, {
        issues: parsed.error.issues.map((i) => ({ path: ["answer", ...i.path].join("."), message: i.message })),
      });
    return { answer: parsed.data, requestHash: sha256(JSON.stringify({ problem: problem.slug, answer: parsed.data ?? null })) };
  }

  const { bytes, filename } = input.model;
  const spec = grader.modelSpec!(grader.configSchema.parse(problem.graderConfig));
  const limit = Math.min(limits.maxBytes, spec.budget.maxBytes);
  if (bytes.byteLength > limit)
    throw new PayloadTooLargeError(`The model is ${bytes.byteLength} bytes; this problem accepts at most ${limit}.`);
  if (bytes.byteLength === 0) throw new BadRequestError("EMPTY_MODEL", "The uploaded `model` file is empty.");
  const check = preflight(bytes, spec, limits.preflight);
  if (!check.ok) throw new UnprocessableError("MODEL_REJECTED", check.message, { reason: check.code });
  const hash = sha256(bytes);
  return {
    answer: { model: { sha256: hash, size: bytes.byteLength, ...(filename ? { filename: filename.slice(0, 255) } : {}) } },
    blob: { sha256: hash, bytes },
    requestHash: sha256(JSON.stringify({ problem: problem.slug, model: hash })),
  };
}
