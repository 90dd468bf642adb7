import type { Config } from "../config.ts";
import type { Db, Prisma } from "../db.ts";
import { AppError, ConflictError, NotFoundError, UnprocessableError } from "../errors.ts";
import { studentSeed } from "../lib/crypto.ts";
import { asc, keysetArgs, toPage, type PageArgs } from "../lib/keyset.ts";
import { enqueueGrading, type GradingQueue } from "../grading/queue.ts";
import { isStaff, memberRole, requireUser, roleIn, type CourseRole } from "./access.ts";
import type { Principal } from "./auth.ts";
import type { ProblemSetService } from "./problem-sets.ts";
import { submissionView, viewInclude } from "./submission-view.ts";
import { acceptedAnswer, prepareAnswerOffLoop, type PreflightRunner, type UploadedModel } from "./answers.ts";
import { preflightOptions } from "../grading/model-runtime.ts";
import { preflightInThread, ThreadOutOfMemory, ThreadTimeout } from "../grading/threads/index.ts";
import { studentPolicy, windowAt } from "./gradebook/policy.ts";
import { policyNow, revealDates, windowRefusal } from "./gradebook/submit-rules.ts";
import { assignmentPolicy } from "./gradebook/records.ts";
import { IngestStore, type SubmitContext } from "./ingest-store.ts";
const SUBMISSION_ORDER = [asc("createdAt", "date"), asc("id")];

export interface SubmitInput {
  answer?: unknown;
  model?: UploadedModel;
  idempotencyKey?: string;
}

type Where = { assignmentId: string; problemSlug: string; sendsModel: boolean; idempotencyKey?: string };

/** What authorize() found: who submits what where, and what the problem accepts (known before any body is read). */
export interface SubmitTarget {
  /** The request it was decided for, to decide again if the insert finds the context changed meanwhile. */
  request: { principal: Principal; where: Where };
  /** The context's fingerprint the insert checks; null: not checked (the exam clock was started just now). */
  fingerprint: string | null;
  userId: string;
  role: CourseRole;
  /** maxAttempts: the student's own (extra attempts of an extension included); null for staff. */
  assignment: { id: string; maxAttempts: number | null; countPrecheckRejections: boolean; countRunRejections: boolean };
  problemSlug: string;
  current: NonNullable<Awaited<ReturnType<ProblemSetService["currentProblem"]>>>;
  /** null when on time or for staff; the window's refusal when a student is outside it (thrown unless replaying). */
  windowError: AppError | null;
  lateFactor: number;
  /** Bytes a model upload may have (problem budget and MODEL_MAX_BYTES); null for JSON problems. */
  modelMaxBytes: number | null;
}

type Logger = { warn(obj: object, msg: string): void };

/** Preflight in a pool thread: a model built to make protobuf decoding slow or large costs a thread, not the API. */
const preflightOffLoop: PreflightRunner = async (bytes, spec, opts) => {
  try {
    return await preflightInThread(bytes, spec, opts);
  } catch (err) {
    if (err instanceof ThreadTimeout || err instanceof ThreadOutOfMemory)
      throw new UnprocessableError("MODEL_REJECTED", `The model could not be checked: its decoding ${err.message}.`, {
        reason: "TOO_LARGE",
      });
    throw err;
  }
};

export class SubmissionService {
  constructor(
    private readonly db: Db,
    private readonly queue: GradingQueue,
    private readonly problemSets: ProblemSetService,
    private readonly config: Pick<Config, "SEED_SECRET" | "MODEL_MAX_BYTES" | "ONNX_ALLOWED_DOMAINS" | "DATABASE_URL" | "INGEST_BATCH_MAX">,
    private readonly log: Logger,
  ) {
    this.ingest = new IngestStore(config.DATABASE_URL, config.INGEST_BATCH_MAX);
  }

  private readonly ingest: IngestStore;

  /** Ends the submit path's own connections (the app's onClose). */
  close(): Promise<void> {
    return this.ingest.close();
  }

  /**
   * Everything that can refuse a submission without its body: the caller, their enrolment, the assignment's
   * window, the problem and the kind of answer it takes. The route calls this before reading an upload.
   */
  async authorize(p: Principal, where: Where): Promise<SubmitTarget> {
    const userId = requireUser(p);
    // The caller's context as this process last read it saves a round trip when it lets the submission through: the
    // insert checks it is still current (a PATCH of the assignment or a new extension applies to the next
    // submission). A refusal, or a first exam view to record, is decided on a fresh read only.
    const kept = this.ingest.keptContext(where.assignmentId, userId);
    if (kept) {
      const target = await this.decide(p, where, kept, false).catch(() => null);
      if (target) return target;
    }
    return (await this.decide(p, where, await this.ingest.context(where.assignmentId, userId), true))!;
  }

  /** The target for this context; null when `fresh` is false and the context would refuse or write. */
  private async decide(p: Principal, where: Where, ctx: SubmitContext | null, fresh: boolean): Promise<SubmitTarget | null> {
    const userId = requireUser(p);
    const role = ctx && roleIn(p, ctx.assignment.courseId, ctx.enrolledRole);
    if (!ctx || !role) throw new NotFoundError("Assignment", where.assignmentId);
    const { assignment } = ctx;
    const current = await this.problemSets.currentProblem(assignment, where.problemSlug);
    if (!current) throw new NotFoundError(`Problem '${where.problemSlug}' in assignment`, where.assignmentId);

    // Staff may submit at any time, as often as they like, to try a problem out; windows and attempts bind students,
    // with their extension applied (and on a timed assignment, a submission before any view starts their clock).
    let lateFactor = 1;
    let windowError: AppError | null = null;
    let maxAttempts: number | null = null;
    let fingerprint: string | null = ctx.fingerprint;
    if (!isStaff(role)) {
      const now = new Date();
      let policy = studentPolicy(assignmentPolicy(assignment), ctx.extension, ctx.examStartedAt);
      // The exam clock starts here only if it has not yet (once per student and exam): policyNow stores it, which
      // changes the context; this one submission goes on unchecked (as decided on the facts just written).
      if (assignment.timeLimitMinutes !== null && !ctx.examStartedAt && windowAt(policy, now).open) {
        if (!fresh) return null;
        policy = (await policyNow(this.db, assignment, userId, now)).policy;
        this.ingest.forget(assignment.id, userId);
        fingerprint = null;
      }
      windowError = windowRefusal(policy, now);
      const w = windowAt(policy, now);
      if (w.open) lateFactor = w.lateFactor;
      maxAttempts = policy.maxAttempts;
    }
    if (windowError && !fresh) return null;
    // Outside the window only a retry of an earlier request (same Idempotency-Key) goes on, to be replayed.
    if (windowError && !(where.idempotencyKey && (await this.keyUsed(userId, assignment.id, where.problemSlug, where.idempotencyKey))))
      throw windowError;
    const { modelMaxBytes } = acceptedAnswer(current.grader, current.problem, where.sendsModel, this.config.MODEL_MAX_BYTES);
    const rules = {
      id: assignment.id,
      maxAttempts,
      countPrecheckRejections: assignment.countPrecheckRejections,
      countRunRejections: assignment.countRunRejections,
    };
    const request = { principal: p, where };
    return {
      request,
      fingerprint,
      userId,
      role,
      assignment: rules,
      problemSlug: where.problemSlug,
      current,
      windowError,
      lateFactor,
      modelMaxBytes,
    };
  }

  async submit(target: SubmitTarget, input: SubmitInput): Promise<SubmitResult> {
    let prepared = await this.prepare(target, input);
    // A stale context (changed since it was read) is decided again on a fresh read; a third try goes unchecked, as a
    // context read and an insert in two transactions would, so a context changing on every try cannot starve it.
    for (let tries = 1; ; tries++) {
      const outcome = await this.take(target, input, prepared, tries < 3);
      if (outcome) return outcome;
      const { principal, where } = target.request;
      this.ingest.forget(where.assignmentId, target.userId);
      const again = await this.authorize(principal, where);
      if (again.current.problem.id !== target.current.problem.id) prepared = await this.prepare(again, input);
      target = again;
    }
  }

  private prepare(target: SubmitTarget, input: SubmitInput) {
    return prepareAnswerOffLoop(
      target.current.grader,
      target.current.problem,
      input,
      { maxBytes: this.config.MODEL_MAX_BYTES, preflight: preflightOptions(this.config) },
      preflightOffLoop,
    );
  }

  /** The submission taken (or replayed, or refused); null when its context has changed since it was decided. */
  private async take(
    target: SubmitTarget,
    input: SubmitInput,
    { answer, blob, requestHash }: Awaited<ReturnType<SubmissionService["prepare"]>>,
    checked: boolean,
  ): Promise<SubmitResult | null> {
    const { userId, assignment, current, problemSlug } = target;
    // Outside the window only a replay answers (authorize let it through because its key was used); in it, the
    // insert itself finds a replay under the same lock that numbers attempts.
    if (target.windowError) {
      const scope = { userId, assignmentId: assignment.id, problemSlug };
      const replay = input.idempotencyKey ? await this.replay(scope, input.idempotencyKey, requestHash) : null;
      if (replay) return replay;
      throw target.windowError;
    }

    const seed = studentSeed(this.config.SEED_SECRET, userId, current.setSlug, current.problem.slug);
    const outcome = await this.ingest.insert({
      fingerprint: checked ? target.fingerprint : null,
      assignmentId: assignment.id,
      userId,
      problemSlug,
      problemId: current.problem.id,
      maxAttempts: assignment.maxAttempts,
      rules: assignment,
      answer,
      modelSha256: blob?.sha256,
      blob,
      seed,
      lateFactor: target.lateFactor,
      idempotencyKey: input.idempotencyKey,
      requestHash,
    });
    if (outcome.kind === "stale") return null;
    if (outcome.kind === "full") {
      const max = assignment.maxAttempts!;
      throw new ConflictError("ATTEMPTS_EXHAUSTED", `All ${max} attempts at this problem are used.`, { used: outcome.used, max });
    }
    if (outcome.kind === "prior") {
      // Another request with this key committed first (the lock orders them): it is the answer, if it was the same request.
      if (outcome.requestHash !== requestHash)
        throw new ConflictError("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used for a different request; use a new key.");
      return { id: outcome.id, status: outcome.status, attempt: outcome.attempt, replayed: true };
    }
    // After the commit: a crash or a Redis outage here leaves a queued row, which the outbox enqueues.
    await this.enqueue(outcome.id, 1);
    return { id: outcome.id, status: "queued", attempt: outcome.attempt, replayed: false };
  }

  private async keyUsed(userId: string, assignmentId: string, problemSlug: string, idempotencyKey: string) {
    return (await this.db.submission.count({ where: { userId, assignmentId, problemSlug, idempotencyKey } })) > 0;
  }

  /** Redis down must not lose the submission: it is in Postgres already, and the outbox enqueues it later. */
  private async enqueue(submissionId: string, run: number) {
    try {
      await enqueueGrading(this.queue, { submissionId, run });
    } catch (err) {
      this.log.warn({ err, submissionId }, "enqueue failed; the outbox will pick the submission up");
    }
  }

  /** A key is scoped to (user, assignment, problem): the same key on another problem is a different request. */
  private async replay(
    scope: { userId: string; assignmentId: string; problemSlug: string },
    key: string,
    requestHash: string,
  ): Promise<SubmitResult | null> {
    const prior = await this.db.submission.findUnique({
      where: { userId_assignmentId_problemSlug_idempotencyKey: { ...scope, idempotencyKey: key } },
    });
    if (!prior) return null;
    if (prior.requestHash !== requestHash)
      throw new ConflictError("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used for a different request; use a new key.");
    return { id: prior.id, status: prior.status, attempt: prior.attempt, replayed: true };
  }

  private async visible(p: Principal, id: string) {
    const s = await this.db.submission.findUnique({
      where: { id },
      include: viewInclude,
    });
    if (!s) throw new NotFoundError("Submission", id);
    const role = await memberRole(this.db, p, s.assignment.courseId);
    const staff = role !== null && isStaff(role);
    if (!staff && s.userId !== p.userId) throw new NotFoundError("Submission", id);
    return { s, staff };
  }

  async get(p: Principal, id: string) {
    const { s, staff } = await this.visible(p, id);
    return submissionView(staff ? s : { ...s, assignment: await revealDates(this.db, s.assignment) }, staff, new Date());
  }

  /** One page of an assignment's submissions, oldest first (keyset on createdAt, id: read page by page in SQL). */
  async list(p: Principal, assignmentId: string, filter: { userId?: string; problem?: string }, page: PageArgs = { limit: 100 }) {
    const assignment = await this.db.assignment.findUnique({ where: { id: assignmentId } });
    const role = assignment ? await memberRole(this.db, p, assignment.courseId) : null;
    if (!assignment || !role) throw new NotFoundError("Assignment", assignmentId);
    const staff = isStaff(role);
    const k = keysetArgs<Prisma.SubmissionWhereInput, Prisma.SubmissionOrderByWithRelationInput>(SUBMISSION_ORDER, page);
    const rows = await this.db.submission.findMany({
      where: { AND: [{ assignmentId, problemSlug: filter.problem, userId: staff ? filter.userId : (p.userId ?? undefined) }, k.where] },
      orderBy: k.orderBy,
      take: k.take,
      include: viewInclude,
    });
    const reveal = staff || !rows[0] ? null : await revealDates(this.db, rows[0].assignment);
    const now = new Date();
    return toPage(rows, SUBMISSION_ORDER, page, (s) => submissionView(reveal ? { ...s, assignment: reveal } : s, staff, now));
  }
}

export interface SubmitResult {
  id: string;
  status: string;
  attempt: number;
  replayed: boolean;
}
