import type { ModelRuntime } from "../../graders/onnx/types.ts";
import { rejected } from "../../graders/result.ts";
import { gradeResultSchema, type GradeResult } from "../../graders/types.ts";
import { preflight, type PreflightOptions } from "./onnx/preflight.ts";
import type { Db } from "../db.ts";
import { isUniqueViolation } from "../lib/prisma-errors.ts";
import { gradingDuration, gradingOutcomes } from "../metrics.ts";
import type { GradableProblem, ProblemSetService } from "../services/problem-sets.ts";
import type { GradingJob } from "./queue.ts";

export interface GradeDeps {
  db: Db;
  problemSets: ProblemSetService;
  /** Where models run: the sandbox pool, created on the first model problem a worker meets. */
  modelRuntime: () => ModelRuntime;
  preflight: PreflightOptions;
  /** A run claimed more often than this (workers dying on it) is given up as failed. */
  maxClaims: number;
  timeoutMs: number;
}

export type GradeOutcome = "graded" | "rejected" | "failed" | "skipped";

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/** Problems are immutable, so a worker can keep the parsed config and private files of the ones it saw lately. */
const problemCache = new Map<string, GradableProblem>();
async function loadProblem(deps: GradeDeps, problemId: string) {
  let p = problemCache.get(problemId);
  if (!p) {
    p = await deps.problemSets.loadGradable(problemId);
    if (problemCache.size >= 64) problemCache.delete(problemCache.keys().next().value!);
    problemCache.set(problemId, p);
  }
  return p;
}

/**
 * The worker's one job: claim the run, grade it, write exactly one Grade and the new status together.
 * Safe to run twice for the same run (stalled job, killed worker): the unique (submission, run, kind)
 * key lets one Grade in, and the status update is conditional on the run still being current.
 */
export async function gradeSubmission(deps: GradeDeps, job: GradingJob): Promise<GradeOutcome> {
  const { db } = deps;
  const claimed = await db.submission.updateMany({
    where: { id: job.submissionId, gradingRun: job.run, status: { in: ["queued", "running"] } },
    data: { status: "running", statusAt: new Date(), claims: { increment: 1 } },
  });
  if (claimed.count === 0) return outcome("skipped");

  const s = await db.submission.findUniqueOrThrow({ where: { id: job.submissionId } });
  if (s.claims > deps.maxClaims) {
    await markFailed(db, job, `Grading was started ${s.claims - 1} times without finishing; giving up.`);
    return outcome("failed");
  }

  const problem = await loadProblem(deps, s.problemId);
  const started = performance.now();
  const model = s.modelSha256 ? await loadModel(db, s.modelSha256) : undefined;
  const result = await withTimeout(runGrader(problem, s, model, deps), deps.timeoutMs);
  const durationMs = Math.round(performance.now() - started);
  const r: GradeResult = gradeResultSchema.parse(result);
  const status = r.status === "graded" ? "graded" : r.status === "rejected" ? "rejected" : "failed";

  try {
    await db.$transaction(async (tx) => {
      await tx.grade.create({
        data: {
          submissionId: s.id,
          run: job.run,
          status: r.status,
          rawScore: round(r.score),
          score: round(r.score * s.lateFactor),
          maxScore: r.maxScore,
          feedback: r.feedback,
          needsReview: r.needsReview ?? false,
          problemId: problem.id,
          graderType: problem.grader.type,
          graderVersion: problem.grader.version,
          executionProvider: r.provenance?.executionProvider,
          ortVersion: r.provenance?.ortVersion,
          inputSeed: r.provenance?.inputSeed,
          // How the model ran (memory cap, account, network), when one ran: the sandbox's facts on this host.
          isolation: r.provenance ? { ...deps.modelRuntime().isolation } : undefined,
          hashes: { ...(s.modelSha256 ? { model: s.modelSha256 } : {}), assets: problem.assetHashes },
          durationMs,
        },
      });
      await tx.submission.updateMany({
        where: { id: s.id, gradingRun: job.run },
        data: { status, gradedAt: new Date(), statusAt: new Date(), lastError: r.status === "error" ? r.feedback.summary : null },
      });
    });
  } catch (e) {
    if (isUniqueViolation(e)) return outcome("skipped"); // another run of this job wrote the grade first
    throw e;
  }
  gradingDuration.observe({ grader: problem.grader.type, status }, durationMs / 1000);
  return outcome(status);
}

async function loadModel(db: Db, sha256: string): Promise<Uint8Array> {
  const blob = await db.blob.findUniqueOrThrow({ where: { sha256 } });
  return new Uint8Array(blob.data);
}

/**
 * Model answers go through preflight again before any session: the API checked them, but against
 * the revision current then, and a worker must not trust what another process wrote.
 */
async function runGrader(
  problem: GradableProblem,
  s: { answer: unknown; seed: string },
  model: Uint8Array | undefined,
  deps: Pick<GradeDeps, "modelRuntime" | "preflight">,
): Promise<GradeResult> {
  const input = { config: problem.config, privateData: problem.privateData, answer: s.answer, seed: s.seed, points: problem.points };
  if (!problem.grader.modelSpec) return problem.grader.grade(input);
  if (!model) return rejected(problem.points, "This problem takes an ONNX model, and the submission has none.");
  const check = preflight(model, problem.grader.modelSpec(problem.config), deps.preflight);
  if (!check.ok) return rejected(problem.points, `Model refused (${check.code}): ${check.message}`);
  return problem.grader.grade({ ...input, model, runtime: deps.modelRuntime() });
}

/** After the last retry an infrastructure failure is visible to staff as `failed`, never left `running`. */
export async function markFailed(db: Db, job: GradingJob, reason: string): Promise<void> {
  await db.submission.updateMany({
    where: { id: job.submissionId, gradingRun: job.run, status: { in: ["queued", "running"] } },
    data: { status: "failed", statusAt: new Date(), lastError: reason.slice(0, 2000) },
  });
}

function outcome(o: GradeOutcome): GradeOutcome {
  gradingOutcomes.inc({ outcome: o });
  return o;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`grader did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
