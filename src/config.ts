import { z } from "zod";

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");

/** "a, b,c" → ["a", "b", "c"], each item checked, at least one. */
const commaList = <T extends z.ZodType<unknown, string>>(dflt: string, item: T) =>
  z
    .string()
    .default(dflt)
    .transform((s) =>
      s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item).min(1));

const schema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  HOST: z.string().default("0.0.0.0"),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DATABASE_URL: z.string().url().default("postgresql://postgres@127.0.0.1:5432/autograder"),
  REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  /** Prefix of every BullMQ key, so several deployments (or test files) can share one Redis. */
  QUEUE_PREFIX: z.string().min(1).default("autograder"),
  ADMIN_TOKEN: z
    .string()
    .min(32, "ADMIN_TOKEN must be at least 32 characters")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  /** Secret behind per-student seeds; students must not be able to compute each other's numbers. Required in production. */
  SEED_SECRET: z.string().min(16).optional(),
  /** `npm run worker` serves /metrics and /healthz here (0 turns it off); `npm start` uses the API's. */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /**
   * Jobs one worker process runs at once. Most of a grade is waiting (Postgres, Redis), so this is well above the
   * cores; CPU work is bounded separately (GRADER_THREADS, SANDBOX_POOL_SIZE default to the cores).
   */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(64),
  /** `npm start` (mode all): grading worker processes beside the API's; 0 grades inside the API's process. */
  WORKER_PROCESSES: z.coerce.number().int().min(0).max(16).default(1),
  GRADING_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  GRADING_BACKOFF_MS: z.coerce.number().int().min(0).default(2000),
  GRADING_STALE_AFTER_S: z.coerce.number().positive().default(120),
  SWEEP_INTERVAL_S: z.coerce.number().positive().default(30),
  /** How long a worker's hold on a job lasts without renewal; a killed worker's job is retaken after about this. */
  GRADING_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  GRADER_TIMEOUT_S: z.coerce.number().positive().default(60),
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  BUNDLE_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /** Server-wide cap on an uploaded model; a problem's budget may set a lower one. */
  MODEL_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /** Execution providers in order of preference; a failing one falls back to the next once. */
  GRADER_EXECUTION_PROVIDERS: commaList("cuda,cpu", z.enum(["cuda", "cpu"])),
  /** Operator domains an uploaded model may use (e.g. add ai.onnx.ml for scikit-learn exports). */
  ONNX_ALLOWED_DOMAINS: commaList("ai.onnx", z.string()),
  GRADER_INTRA_OP_THREADS: z.coerce.number().int().min(0).default(1),
  GRADER_INTER_OP_THREADS: z.coerce.number().int().min(0).default(1),
  /** Sandbox children per worker process (each runs one model at a time); default 2 × min(WORKER_CONCURRENCY, cores). */
  SANDBOX_POOL_SIZE: z.coerce.number().int().min(1).max(64).optional(),
  /** onnxruntime-node leaks across sessions: a child is replaced after this many models. */
  SANDBOX_RECYCLE_AFTER: z.coerce.number().int().min(1).default(50),
  SANDBOX_MEMORY_MB: z.coerce.number().int().min(256).default(2048),
  /** Wall-clock limit for loading a model and for each inference batch; the child is killed past it. */
  MODEL_TIMEOUT_S: z.coerce.number().positive().default(20),
  PROBLEMS_DIR: z.string().default("problems"),
  LOAD_PROBLEMS: bool.default(true),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  RATE_LIMIT_PER_MIN: z.coerce.number().int().min(0).default(600),
  /**
   * Seconds a token's principal is reused without reading the database: a token revoked by another process (or a
   * role changed there) stops working within this bound; revocation through this process's API applies at once. 0 = off.
   */
  AUTH_CACHE_TTL_S: z.coerce.number().min(0).max(300).default(5),
  /** Failed authentications allowed per client address per minute (guessed, revoked or expired tokens). */
  AUTH_FAILURES_PER_MIN: z.coerce.number().int().min(0).default(100),
  /** Proxies whose X-Forwarded-For is believed: comma-separated addresses or CIDRs; empty trusts none. */
  TRUST_PROXY: z.string().default(""),
  /** Longest lifetime of a token a user mints for themselves. */
  TOKEN_MAX_DAYS: z.coerce.number().int().min(1).default(365),
  /** When set, /metrics (API and worker) needs `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(16).optional(),
  /** Development only: run models without an address-space cap when prlimit is missing. */
  SANDBOX_ALLOW_UNCAPPED: bool.default(false),
  /** Unprivileged user the sandbox children run as when the worker runs as root. */
  SANDBOX_USER: z.string().default("nobody"),
  /** Process (thread) limit of a sandbox child (prlimit --nproc). */
  SANDBOX_MAX_PROCS: z.coerce.number().int().min(16).default(256),
  /** Threads that run synchronous graders (text, expressions, fits) off the event loop; default min(WORKER_CONCURRENCY, cores). */
  GRADER_THREADS: z.coerce.number().int().min(1).max(64).optional(),
  /** Heap cap of one grader thread. */
  GRADER_THREAD_MEMORY_MB: z.coerce.number().int().min(32).default(512),
  /** Byte budget of a process's cache of problems' private files (by sha256); least recently used go first. */
  PROBLEM_CACHE_MB: z.coerce.number().min(0).default(256),
  /** Byte budget of a process's cache of parsed problem configs (by problem id). */
  PROBLEM_CONFIG_CACHE_MB: z.coerce.number().min(0).default(32),
  /**
   * Submissions (JSON answers) that arrive while earlier ones are being written go to Postgres together, up to this
   * many per statement and commit (1: one each). Alone, a submission is written at once, so this adds no latency.
   */
  INGEST_BATCH_MAX: z.coerce.number().int().min(1).max(256).default(32),
  /** On SIGTERM/SIGINT, how long running grades may take to finish before they are handed back to the queue. */
  SHUTDOWN_GRACE_S: z.coerce.number().min(0).default(25),
  /** The API answers 503 + Retry-After past any of these (0 turns one off): event-loop delay, heap, resident memory. */
  PRESSURE_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().min(0).default(1000),
  PRESSURE_MAX_HEAP_MB: z.coerce.number().min(0).default(0),
  PRESSURE_MAX_RSS_MB: z.coerce.number().min(0).default(0),
  /** How often the pressure is sampled, and the Retry-After (seconds) a 503 carries. */
  PRESSURE_SAMPLE_MS: z.coerce.number().int().min(10).default(1000),
  PRESSURE_RETRY_AFTER_S: z.coerce.number().int().min(1).default(10),
  /** The address LMSs and browsers reach this API at (LTI redirect and launch URLs, tool configuration). */
  PUBLIC_URL: z.string().url().default("http://localhost:3000"),
  /** Where a browser lands after an LTI launch, with `#token=…` in the fragment (a front end); default PUBLIC_URL/docs. */
  LTI_LANDING_URL: z.string().url().optional(),
  /** Lifetime of the session token an LTI launch issues. */
  LTI_SESSION_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(8),
  /** After fetching a platform's JWKS, how long a token with an unknown kid waits before it may trigger a refetch. */
  LTI_JWKS_COOLDOWN_S: z.coerce.number().min(0).default(30),
  /** Score passback: deliveries to the LMS before a score becomes a dead letter, and the first backoff (doubles each time). */
  LTI_PASSBACK_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  LTI_PASSBACK_BACKOFF_MS: z.coerce.number().int().min(1).default(5000),
  /** Timeout of one HTTP call to a platform (token, line items, scores, memberships). */
  LTI_HTTP_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /** NRPS roster sync reads at most this many pages (Link rel="next") per context. */
  LTI_ROSTER_MAX_PAGES: z.coerce.number().int().min(1).default(200),
});

const DEV_SEED_SECRET = "dev-seed-secret-change-me";

/** Production must not run on the development seed secret: anyone could compute every student's numbers. */
const refined = schema
  .superRefine((c, ctx) => {
    if (c.NODE_ENV === "production" && !c.SEED_SECRET)
      ctx.addIssue({ code: "custom", path: ["SEED_SECRET"], message: "must be set when NODE_ENV=production (openssl rand -hex 32)" });
  })
  .transform((c) => ({ ...c, SEED_SECRET: c.SEED_SECRET ?? DEV_SEED_SECRET }));

export type Config = z.output<typeof refined>;

/** Parses the environment once; a bad value stops the process with one line per problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = refined.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  return parsed.data;
}

export class ConfigError extends Error {}
