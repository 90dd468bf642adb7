import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { ModelRuntime } from "../../graders/onnx/types.ts";
import { round6 } from "../../graders/result.ts";
import { gradeResultSchema, type GradeResult } from "../../graders/types.ts";
import type { PreflightOptions } from "./onnx/preflight.ts";
import type { Db } from "../db.ts";
import { isUniqueViolation } from "../lib/prisma-errors.ts";
import { gradingDuration, gradingOutcomes } from "../metrics.ts";
import type { ProblemSetService } from "../services/problem-sets.ts";
import type { GradingJob } from "./queue.ts";
import { claimableAt, fail, release, renew, type Claimed } from "./states.ts";
import { directRunWrites, type RunWrites } from "./run-writes.ts";
import type { Semaphore } from "../lib/semaphore.ts";
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
  /** How long a claim holds the run without renewal (GRADING_LOCK_MS); renewed every third of it while grading. */
  leaseMs: number;
  /** Wall-clock budget of one grading run (GRADER_TIMEOUT_S). */
  timeoutMs: number;
  /** Where synchronous graders and the worker's preflight run. */
  threads: ThreadPool;
  /** Model grades running at once (each may hold two sandbox children); the others wait before their budget starts. */
  modelSlots?: Semaphore;
  /** How claims and finishes reach Postgres: a statement each by default; a worker coalesces its concurrent jobs'. */
  runWrites?: RunWrites;
}

type Finished = "graded" | "rejected" | "failed" | "skipped";
/**
 * What the run learned that its notices need, so they cost no read: whose submission (from the claim), and from the
 * finish, the status it wrote and whether the course is linked to an LMS at all (else no passback to look up).
 */
export interface RunFacts {
  assignmentId?: string;
  userId?: string;
  status?: "graded" | "rejected" | "failed";
  lmsLinked?: boolean;
}
/** `busyUntil`: another worker holds a live lease on the run, or it is backing off, until then. */
export type GradeOutcome = Finished | { busyUntil: Date };

/** Which delivery of the job this is: on an infrastructure error the last one gives up, earlier ones back off. */
export interface Attempt {
  number: number;
  last: boolean;
  backoffMs: number;
}

/** A lease token unique to this claim (host:pid:random), so a later claim by the same process is another lease. */
const newHolder = () => `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

/**
 * The worker's one job: claim the run (a lease no other worker can take while it lives), grade it,
 * and finish it (the Grade and the outcome together, by the lease holder only). The states and their
 * transitions are states.ts's; this function only decides which one applies.
 * The run itself is bounded (runGraderBounded): out of budget it ends `rejected` MODEL_TIMEOUT or
 * `failed` GRADER_TIMEOUT, written like any result. Infrastructure errors release the run with a
 * backoff (on the last attempt: fail it) and throw, for BullMQ to retry.
 */
export async function gradeSubmission(
  deps: GradeDeps,
  job: GradingJob,
  attempt: Attempt = { number: 1, last: true, backoffMs: 0 },
  /** Filled in as the run goes (see RunFacts). */
  facts: RunFacts = {},
): Promise<GradeOutcome> {
  const { db } = deps;
  const lease = await writes(deps).claim({ ...job, holder: newHolder(), leaseMs: deps.leaseMs });
  if (lease) Object.assign(facts, { assignmentId: lease.submission.assignmentId, userId: lease.submission.userId });
  if (!lease) {
    const at = await claimableAt(db, job);
    return at ? { busyUntil: at } : outcome("skipped");
  }
  if (lease.claims > deps.maxClaims) {
    await fail(db, job, lease.holder, `Grading was started ${lease.claims - 1} times without finishing; giving up.`, "GRADING_ABANDONED");
    return outcome("failed");
  }
  const renewal = setInterval(() => {
    renew(db, lease, deps.leaseMs).then(
      (held) => held || clearInterval(renewal),
      () => undefined, // the database is away: try next tick; if the lease passes meanwhile, the finish finds out
    );
  }, deps.leaseMs / 3);
  renewal.unref();
  try {
    return outcome(await gradeHeld(deps, lease, facts));
  } catch (err) {
    const reason = (err as Error).message;
    await (
      attempt.last
        ? fail(db, job, lease.holder, `Grading failed after ${attempt.number} attempts: ${reason}`, "GRADING_FAILED")
        : release(db, job, lease.holder, reason, attempt.backoffMs)
    ).catch(() => undefined); // the database is away too: the lease passes and the outbox takes the run again
    throw err;
  } finally {
    clearInterval(renewal);
  }
}

async function gradeHeld(deps: GradeDeps, lease: Claimed, facts: RunFacts): Promise<Finished> {
  const s = lease.submission;
  const problem = await deps.problemSets.loadGradable(s.problemId);
  const started = performance.now();
  const model = s.modelSha256 ? await loadModel(deps.db, s.modelSha256) : undefined;
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
    deps.modelSlots,
  );
  const durationMs = Math.round(performance.now() - started);
  const r: GradeResult = gradeResultSchema.parse(result);
  const status = r.status === "graded" ? "graded" : r.status === "rejected" ? "rejected" : "failed";

  const finished = await writes(deps)
    .finish({
      lease,
      result: {
        status,
        lastError: r.status === "error" ? r.feedback.summary : null,
        lastErrorCode: r.status === "graded" ? null : (r.code ?? null),
      },
      grade: {
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
    })
    .catch((e: unknown) => {
      if (isUniqueViolation(e) || sqlState(e) === "23505") return null; // this run's grade is in already
      throw e;
    });
  // A lost lease (taken over after it passed, or superseded by a regrade) writes nothing: the other holder's result stands.
  if (!finished) return "skipped";
  Object.assign(facts, { status, lmsLinked: finished.lmsLinked });
  gradingDuration.observe({ grader: problem.grader.type, status }, durationMs / 1000);
  return status;
}

async function loadModel(db: Db, sha256: string): Promise<Uint8Array> {
  const blob = await db.blob.findUniqueOrThrow({ where: { sha256 } });
  return new Uint8Array(blob.data);
}

const writes = (deps: GradeDeps) => deps.runWrites ?? directRunWrites(deps.db);

function outcome<O extends Finished>(o: O): O {
  gradingOutcomes.inc({ outcome: o });
  return o;
}

/** The SQLSTATE of a failed raw query, wherever Prisma's driver adapter put it (a raw statement's unique violation is not P2002). */
function sqlState(e: unknown): string | undefined {
  for (let c: unknown = e, i = 0; c && typeof c === "object" && i < 5; c = (c as { cause?: unknown }).cause, i++) {
    const x = c as { code?: unknown; meta?: { code?: unknown; driverAdapterError?: { cause?: { originalCode?: unknown } } } };
    for (const v of [x.meta?.code, x.meta?.driverAdapterError?.cause?.originalCode, x.code])
      if (typeof v === "string" && /^\d{5}$/.test(v)) return v;
  }
  return undefined;
}
