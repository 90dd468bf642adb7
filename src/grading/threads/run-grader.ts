import { problemError, rejected } from "../../../graders/result.ts";
import { ModelFault, type ModelRuntime } from "../../../graders/onnx/types.ts";
import type { Grader, GradeResult, PrivateData } from "../../../graders/types.ts";
import type { PreflightOptions } from "../onnx/preflight.ts";
import type { Semaphore } from "../../lib/semaphore.ts";
import { ThreadOutOfMemory, ThreadTimeout, type ThreadPool } from "./index.ts";

/**
 * After the budget's abort, how long a model grader gets to settle: its sessions' children are killed
 * at once (the runtime honours the signal), so it settles within milliseconds unless its own
 * JavaScript is stuck, and then the run is the grader's fault either way.
 */
const SETTLE_MS = 1000;

/** The run's wall-clock budget ran out: the reason its AbortSignal carries. */
export class GradingTimeout extends Error {
  constructor(readonly ms: number) {
    super(`grading did not finish within ${ms / 1000} s`);
    this.name = "GradingTimeout";
  }
}

export interface GraderRun {
  grader: Grader;
  config: unknown;
  privateData: PrivateData;
  answer: unknown;
  seed: string;
  points: number;
  /** Model problems: the uploaded bytes, where models run, and what preflight allows. */
  model?: Uint8Array;
  runtime?: () => ModelRuntime;
  preflight?: PreflightOptions;
  onProgress?: (done: number, total: number) => void;
}

/**
 * One grading run within `timeoutMs`, with nothing of it left running afterwards. Synchronous
 * graders run in a pool thread that the budget terminates; model graders run here with the run's
 * AbortSignal, which kills their sandbox children. Out of budget, the result says whose fault it was:
 *   - the student's model (a submission session was killed): `rejected`, code MODEL_TIMEOUT;
 *   - the problem's own logic (a thread, a reference model, the grader's code): `error`, code
 *     GRADER_TIMEOUT (or GRADER_OUT_OF_MEMORY for a thread's heap cap), deterministic, not retried.
 * Anything else thrown is an infrastructure failure for the caller to retry.
 */
export async function runGraderBounded(run: GraderRun, pool: ThreadPool, timeoutMs: number, modelSlots?: Semaphore): Promise<GradeResult> {
  if (ON_EVENT_LOOP.has(run.grader.type) && !run.grader.modelSpec) return gradeHere(run);
  if (!run.grader.modelSpec) return gradeInThread(run, pool, timeoutMs);
  // Like a thread's, a model run's budget starts when there is room to run it: a grade that waited for a sandbox
  // child behind other students' models must not be refused as too slow (MODEL_TIMEOUT) for the wait.
  const release = await modelSlots?.acquire();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new GradingTimeout(timeoutMs)), timeoutMs);
  try {
    return await gradeModel(run, pool, ac.signal, timeoutMs);
  } finally {
    clearTimeout(timer);
    release?.();
  }
}

/**
 * Graders that run on the worker's event loop, without a thread round trip. The rule (docs: "nothing a student
 * uploads may block the event loop") still holds for them: their work is bounded by the answer schema and the
 * problem's own config, with no regex, expression, parse or fit a student's input can make slow — `choice`
 * compares at most 1,000 selected ids (choiceAnswerSchema) with the options. Text, expressions, numeric
 * expressions, fits and every model grader stay in threads or sandboxes.
 */
const ON_EVENT_LOOP: ReadonlySet<string> = new Set(["choice"]);

async function gradeHere(run: GraderRun): Promise<GradeResult> {
  const { grader, config, privateData, answer, seed, points } = run;
  return grader.grade({ config, privateData, answer, seed, points });
}

const budgetSpent = (points: number, ms: number) =>
  problemError(
    points,
    `Grading stopped: the problem's grader did not finish within its ${ms / 1000} s budget. Your course staff can see this failure; it does not use one of your attempts.`,
    "GRADER_TIMEOUT",
  );

/** The budget starts when a thread takes the task (see ThreadPool.run). */
async function gradeInThread(run: GraderRun, pool: ThreadPool, timeoutMs: number): Promise<GradeResult> {
  const { grader, config, privateData, answer, seed, points } = run;
  try {
    return await pool.run({ kind: "grade", graderType: grader.type, config, privateData, answer, seed, points }, { timeoutMs });
  } catch (err) {
    if (err instanceof ThreadTimeout) return budgetSpent(points, timeoutMs);
    if (err instanceof ThreadOutOfMemory)
      return problemError(
        points,
        `Grading stopped: the problem's grader ${err.message}. Your course staff can see this failure; it does not use one of your attempts.`,
        "GRADER_OUT_OF_MEMORY",
      );
    throw err;
  }
}

/**
 * Model answers go through preflight again before any session: the API checked them, but against the
 * revision current then, and a worker must not trust what another process wrote.
 */
async function gradeModel(run: GraderRun, pool: ThreadPool, signal: AbortSignal, timeoutMs: number): Promise<GradeResult> {
  const { grader, points, model } = run;
  if (!model || !run.runtime) return rejected(points, "This problem takes an ONNX model, and the submission has none.");
  let check;
  try {
    check = await pool.run(
      { kind: "preflight", bytes: model, spec: grader.modelSpec!(run.config), options: run.preflight ?? {} },
      { signal, timeoutMs },
    );
  } catch (err) {
    if (err instanceof GradingTimeout || err instanceof ThreadTimeout)
      return rejected(points, `Model refused: checking it took longer than ${timeoutMs / 1000} s.`, "MODEL_TIMEOUT");
    if (err instanceof ThreadOutOfMemory) return rejected(points, `Model refused: checking it ${err.message}.`, "MODEL_OUT_OF_MEMORY");
    throw err;
  }
  if (!check.ok) return rejected(points, `Model refused (${check.code}): ${check.message}`, check.code);

  const grading = Promise.resolve(
    grader.grade({
      config: run.config,
      privateData: run.privateData,
      answer: run.answer,
      seed: run.seed,
      points,
      model,
      runtime: run.runtime(),
      signal,
      onProgress: run.onProgress,
    }),
  );
  grading.catch(() => undefined); // settled below, or abandoned after the budget
  const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  const first = await Promise.race([grading.then(settled, failed), aborted.then(() => undefined)]);
  if (first) return unwrap(first, points);

  // Out of budget: the runtime is killing this run's children; what the grader settles with says whose fault it was.
  const late = await Promise.race([grading.then(settled, failed), new Promise<undefined>((r) => setTimeout(r, SETTLE_MS))]);
  if (late && "result" in late && (late.result.status === "graded" || late.result.code === "MODEL_TIMEOUT")) return late.result;
  if (late && "error" in late && late.error instanceof ModelFault && late.error.code === "MODEL_TIMEOUT") return unwrap(late, points);
  return budgetSpent(points, timeoutMs);
}

type Settled = { result: GradeResult } | { error: unknown };
const settled = (result: GradeResult): Settled => ({ result });
const failed = (error: unknown): Settled => ({ error });
/** A ModelFault that a grader let through is still the model's fault, not a reason to retry. */
function unwrap(s: Settled, points: number): GradeResult {
  if ("result" in s) return s.result;
  if (s.error instanceof ModelFault)
    return rejected(points, `Your model could not be evaluated (${s.error.code}): ${s.error.message}`, s.error.code);
  throw s.error;
}
