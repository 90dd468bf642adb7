import type { ModelRuntime } from "../../graders/onnx/types.ts";
import { round6 } from "../../graders/result.ts";
import { gradeResultSchema, type GradeResult } from "../../graders/types.ts";
import type { PreflightOptions } from "./onnx/preflight.ts";
import type { Db } from "../db.ts";
import { isUniqueViolation } from "../lib/prisma-errors.ts";
import { gradingDuration, gradingOutcomes } from "../metrics.ts";
import type { GradableProblem, ProblemSetService } from "../services/problem-sets.ts";
import type { GradingJob } from "./queue.ts";
import type { ThreadPool } from "./threads/index.ts";
import { runGraderBounded } from "./threads/run-grader.ts";

export interface GradeDeps {
  db: Db;
  problemSets: ProblemSetService;
  /** Where models run: the sandbox pool, created on the first model problem a worker meets. */
  modelRuntime: () => ModelRuntime;
  preflight: PreflightOptions;
  /** A run claimed more often than this (workers dying on it) is given up as failed. */
  maxClaims: number;
  /** Wall-clock budget of one grading run (GRADER_TIMEOUT_S). */
  timeoutMs: number;
  /** Where synchronous graders and the worker's preflight run. */
  threads: ThreadPool;
}

export type GradeOutcome = "graded" | "rejected" | "failed" | "skipped";

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
 * The run itself is bounded (runGraderBounded): out of budget it ends `rejected` MODEL_TIMEOUT or
 * `failed` GRADER_TIMEOUT, written like any result; only infrastructure errors throw, for BullMQ to retry.
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
    await markFailed(db, job, `Grading was started ${s.claims - 1} times without finishing; giving up.`, "GRADING_ABANDONED");
    return outcome("failed");
  }

  const problem = await loadProblem(deps, s.problemId);
  const started = performance.now();
  const model = s.modelSha256 ? await loadModel(db, s.modelSha256) : undefined;
  const result = await runGraderBounded(
    {
      grader: problem.grader,
      config: problem.config,
      privateData: problem.privateData,
      answer: s.answer,
      seed: s.seed,
      points: problem.points,
      model,
      runtime: deps.modelRuntime,
      preflight: deps.preflight,
    },
    deps.threads,
    deps.timeoutMs,
  );
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
          rawScore: round6(r.score),
          score: round6(r.score * s.lateFactor),
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
        data: {
          status,
          gradedAt: new Date(),
          statusAt: new Date(),
          lastError: r.status === "error" ? r.feedback.summary : null,
          lastErrorCode: r.status === "graded" ? null : (r.code ?? null),
        },
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

/** After the last retry an infrastructure failure is visible to staff as `failed`, never left `running`. */
export async function markFailed(db: Db, job: GradingJob, reason: string, code: string): Promise<void> {
  await db.submission.updateMany({
    where: { id: job.submissionId, gradingRun: job.run, status: { in: ["queued", "running"] } },
    data: { status: "failed", statusAt: new Date(), lastError: reason.slice(0, 2000), lastErrorCode: code },
  });
}

function outcome(o: GradeOutcome): GradeOutcome {
  gradingOutcomes.inc({ outcome: o });
  return o;
}
