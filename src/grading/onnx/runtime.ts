import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import {
  dtypeSchema,
  ModelFault,
  type DType,
  type ModelRuntime,
  type ModelSession,
  type Tensor,
  type TensorData,
} from "../../../graders/onnx/types.ts";
import { CHILD_SCRIPT, ORT_ENTRY, planSandbox, type Isolation } from "./isolation.ts";
import { ChildGone, SandboxPool, type Reply, type SandboxChild } from "./sandbox-pool.ts";
import { encodeModel } from "./schema.ts";

/**
 * The production ModelRuntime: every model, the student's and the reference, runs in a sandbox child
 * (see sandbox-pool.ts). The worker process itself never loads onnxruntime.
 */

const MiB = 1024 * 1024;

export const sandboxOptionsSchema = z.strictObject({
  /** In order of preference; the first that works for a probe model is used for every later session. */
  providers: z.array(z.string().min(1)).min(1).default(["cuda", "cpu"]),
  /** Children kept warm. */
  size: z.number().int().min(1).max(64).default(2),
  /** Extra children may start while callers wait, up to this many in all (default 2 × size). */
  maxChildren: z.number().int().min(1).max(128).optional(),
  recycleAfter: z.number().int().min(1).default(50),
  /** Address-space cap of each child (prlimit --as). CUDA reserves far more address space than it uses. */
  memoryBytes: z
    .number()
    .int()
    .min(256 * MiB)
    .default(2048 * MiB),
  /** Process/thread limit of a child (prlimit --nproc); counted per account, so it binds only for a non-root one. */
  maxProcs: z.number().int().min(16).default(256),
  /** The account children run as when this process is root. */
  user: z.string().min(1).default("nobody"),
  /** Run without prlimit (no memory cap) instead of refusing; for development machines only. */
  allowUncapped: z.boolean().default(false),
  /** Where prlimit, setpriv and unshare are looked up (default: PATH). */
  toolPath: z.string().optional(),
  loadTimeoutMs: z.number().int().min(1).default(20_000),
  runTimeoutMs: z.number().int().min(1).default(20_000),
  acquireTimeoutMs: z.number().int().min(1).default(60_000),
  startTimeoutMs: z.number().int().min(1).default(15_000),
  intraOpNumThreads: z.number().int().min(0).default(1),
  interOpNumThreads: z.number().int().min(0).default(1),
  /** A run whose outputs exceed this fails (MODEL_BAD_OUTPUT) instead of flooding the worker's memory. */
  maxOutputBytes: z
    .number()
    .int()
    .min(1)
    .default(256 * MiB),
  passEnv: z
    .array(z.string())
    .default([
      "PATH",
      "LD_LIBRARY_PATH",
      "CUDA_VISIBLE_DEVICES",
      "NVIDIA_VISIBLE_DEVICES",
      "CUDA_MODULE_LOADING",
      "OMP_NUM_THREADS",
      "OMP_WAIT_POLICY",
      "MKL_NUM_THREADS",
      "OPENBLAS_NUM_THREADS",
    ]),
});
export type SandboxOptions = z.input<typeof sandboxOptionsSchema>;
type Options = z.output<typeof sandboxOptionsSchema>;

/** pino-compatible; receives the one-time provider fallback warning and sandbox incidents. */
export interface SandboxLogger {
  warn(obj: object, msg: string): void;
}

export interface SandboxStats {
  /** The provider sessions get, once the first open has chosen it. */
  provider: string | null;
  children: { pid: number; busy: boolean; models: number }[];
  waiting: number;
  spawned: number;
  recycled: number;
  killed: number;
}

export type SandboxRuntime = ModelRuntime & { readonly isolation: Isolation; close(): Promise<void>; stats(): SandboxStats };

/** Throws SandboxUnavailable when this host cannot start capped children (see isolation.ts). */
export function createSandboxRuntime(options: SandboxOptions & { logger?: SandboxLogger } = {}): SandboxRuntime {
  const { logger = { warn: (obj, msg) => console.warn(msg, obj) }, ...rest } = options;
  return new SandboxModelRuntime(sandboxOptionsSchema.parse(rest), logger);
}

/** Identity on one float: opened and run once per provider candidate to learn which provider works. */
const PROBE_MODEL = encodeModel({
  ir_version: 8,
  opset_import: [{ domain: "", version: 13 }],
  graph: {
    name: "probe",
    node: [{ op_type: "Identity", input: ["x"], output: ["y"] }],
    input: [{ name: "x", type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }] } } } }],
    output: [{ name: "y", type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }] } } } }],
  },
});

class SandboxModelRuntime implements SandboxRuntime {
  readonly ortVersion = ortPackageVersion();
  readonly pool: SandboxPool;
  readonly isolation: Isolation;
  private choice: Promise<string[]> | null = null;
  private chosen: string[] | null = null;
  private provider: string | null = null;

  constructor(
    readonly o: Options,
    private readonly logger: SandboxLogger,
  ) {
    const { memoryBytes, maxProcs, user, allowUncapped, toolPath: path } = o;
    const plan = planSandbox({ memoryBytes, maxProcs, user, allowUncapped, path });
    this.isolation = plan.isolation;
    if (plan.warning) logger.warn({ isolation: plan.isolation }, plan.warning);
    if (plan.isolation.memoryCapMb === null)
      logger.warn({ isolation: plan.isolation }, "SANDBOX_ALLOW_UNCAPPED: prlimit is missing, sandbox children run WITHOUT a memory cap");
    this.pool = new SandboxPool({
      plan,
      size: o.size,
      maxChildren: Math.max(o.maxChildren ?? 2 * o.size, o.size),
      recycleAfter: o.recycleAfter,
      acquireTimeoutMs: o.acquireTimeoutMs,
      startTimeoutMs: o.startTimeoutMs,
      passEnv: o.passEnv,
      childScript: CHILD_SCRIPT,
      ortEntry: ORT_ENTRY,
      logger,
      warmup: async (child) => {
        const providers = this.chosen;
        const problem = providers && (await this.exercise(child, providers));
        if (problem) throw new Error(`warm-up with ${providers![0]} failed: ${problem}`);
      },
    });
  }

  async open(model: Uint8Array, opts: { role: "submission" | "reference"; signal?: AbortSignal }): Promise<ModelSession> {
    const { role, signal } = opts;
    if (signal?.aborted) throw abortFault(role, signal);
    const providers = await untilAborted(this.providers(), signal, role);
    const child = await untilAborted(this.pool.acquire(), signal, role, (c) => this.pool.release(c));
    child.models++;
    // From here the run's budget can end this child at any moment: whatever waits on it gets the abort.
    const onAbort = () => {
      child.abort(abortFault(role, signal!));
      this.pool.destroy(child);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    let reply: Reply;
    try {
      reply = await this.call(child, this.openRequest(providers), [model], "load", role);
      if (!reply.ok) throw this.refusal(child, reply, "load");
    } catch (e) {
      signal?.removeEventListener("abort", onAbort);
      this.pool.release(child);
      throw e;
    }
    const session = new SandboxSession(this, child, providers[0]!, reply.inputNames as string[], reply.outputNames as string[], role);
    if (signal) session.watch(signal, onAbort);
    return session;
  }

  stats(): SandboxStats {
    const children = this.pool.children().map((c) => ({ pid: c.pid, busy: c.busy, models: c.models }));
    return { provider: this.provider, children, waiting: this.pool.waiting(), ...this.pool.counters };
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /** A request whose child may die: a timeout or an exit becomes the model's fault, never the worker's. */
  async call(
    child: SandboxChild,
    msg: Record<string, unknown>,
    bytes: readonly ArrayBufferView[],
    phase: "load" | "run",
    role: string,
  ): Promise<Reply> {
    const timeoutMs = phase === "load" ? this.o.loadTimeoutMs : this.o.runTimeoutMs;
    try {
      return await child.request(msg, timeoutMs, bytes);
    } catch (e) {
      if (!(e instanceof ChildGone)) throw e;
      e.fault ??= this.lost(child, e, timeoutMs, phase, role); // once, however many requests were queued
      throw e.fault;
    }
  }

  /** The child died or was killed under a request: it leaves the pool, and the loss becomes the error to throw. */
  private lost(child: SandboxChild, e: ChildGone, timeoutMs: number, phase: "load" | "run", role: string): Error {
    this.pool.destroy(child);
    this.logger.warn(
      { role, pid: child.pid, phase, reason: e.reason, detail: e.message, stderr: e.stderr.slice(-2000) },
      "sandbox child lost",
    );
    // Shutdown, a stop signal or the kernel's OOM killer: the host's trouble, so the grade is retried.
    if (this.pool.closed || (e.signal && EXTERNAL_SIGNALS.has(e.signal) && !(e.signal === "SIGKILL" && child.killed)))
      return new Error(`sandbox child ${child.pid} was stopped from outside (${e.message})`, { cause: e });
    const secs = timeoutMs / 1000;
    if (e.reason === "timeout")
      return new ModelFault(
        "MODEL_TIMEOUT",
        phase === "load"
          ? `Loading the model took longer than ${secs} s, so it was stopped.`
          : `The model took longer than ${secs} s on one batch, so it was stopped. Look for a Loop that never ends or an oversized computation.`,
      );
    if (OUT_OF_MEMORY.test(e.stderr))
      return new ModelFault(
        "MODEL_OUT_OF_MEMORY",
        `The model ran out of memory (the sandbox allows ${Math.round(this.o.memoryBytes / MiB)} MiB).`,
      );
    return new ModelFault("MODEL_CRASHED", `The model crashed the runtime (${e.message}).`);
  }

  /** A reply with ok: false, as the fault to throw. */
  refusal(child: SandboxChild, reply: Extract<Reply, { ok: false }>, phase: "load" | "run"): Error {
    const message = clean(reply.error);
    if (reply.kind === "bad-output") return new ModelFault("MODEL_BAD_OUTPUT", message);
    if (reply.kind !== "ort") return new Error(`sandbox protocol error: ${message}`);
    if (OUT_OF_MEMORY.test(message)) {
      child.retire = true;
      return new ModelFault(
        "MODEL_OUT_OF_MEMORY",
        `The model ran out of memory (the sandbox allows ${Math.round(this.o.memoryBytes / MiB)} MiB).`,
        message,
      );
    }
    // Loading sees only the model, so its error is the student's to read. A run's error can quote the shapes
    // and values of the (private) inputs it was fed: the student gets a generic line, staff the text.
    return phase === "load"
      ? new ModelFault("MODEL_LOAD_FAILED", `onnxruntime could not load the model: ${message}`)
      : new ModelFault(
          "MODEL_RUN_FAILED",
          "it failed while running on the grading inputs. Check it locally on inputs of the declared shapes and types; course staff can see the runtime's error.",
          message,
        );
  }

  /** The model itself goes as the request's bytes. */
  private openRequest(providers: string[]) {
    const { intraOpNumThreads, interOpNumThreads, maxOutputBytes } = this.o;
    return { op: "open", providers, intraOpNumThreads, interOpNumThreads, maxOutputBytes };
  }

  /** Chosen once per pool with a trusted probe model, so an upload's error text cannot fake a provider failure. */
  private providers(): Promise<string[]> {
    this.choice ??= this.chooseProviders().catch((e: unknown) => {
      this.choice = null;
      throw e;
    });
    return this.choice;
  }

  private async chooseProviders(): Promise<string[]> {
    const failures: string[] = [];
    for (let i = 0; i < this.o.providers.length; i++) {
      const candidate = this.o.providers.slice(i);
      const problem = await this.probe(candidate);
      if (problem === null) {
        if (failures.length)
          this.logger.warn(
            { unavailable: this.o.providers.slice(0, i), using: candidate[0], reasons: failures },
            `execution provider ${this.o.providers[0]} is unavailable; sandbox sessions use ${candidate[0]}`,
          );
        this.provider = candidate[0]!;
        this.chosen = candidate;
        return candidate;
      }
      failures.push(`${candidate[0]}: ${problem}`);
    }
    throw new Error(`No execution provider works in the ONNX sandbox (${failures.join("; ")})`);
  }

  private async probe(providers: string[]): Promise<string | null> {
    const child = await this.pool.acquire();
    try {
      const problem = await this.exercise(child, providers);
      // A provider that failed half-way may leave state behind; the next candidate gets a fresh child.
      if (problem) child.retire = true;
      return problem;
    } finally {
      this.pool.release(child);
    }
  }

  /** Opens, runs and closes the probe model; returns what went wrong, or null. */
  private async exercise(child: SandboxChild, providers: string[]): Promise<string | null> {
    try {
      const open = await child.request(this.openRequest(providers), this.o.loadTimeoutMs, [PROBE_MODEL]);
      if (!open.ok) return clean(open.error);
      const [msg, bytes] = runRequest({ x: { dtype: "float32", dims: [1], data: new Float32Array([1]) } });
      const run = await child.request(msg, this.o.loadTimeoutMs, bytes);
      if (!run.ok) return clean(run.error);
      const close = await child.request({ op: "close" }, this.o.loadTimeoutMs);
      return close.ok ? null : clean(close.error);
    } catch (e) {
      child.kill();
      return (e as Error).message;
    }
  }
}

class SandboxSession implements ModelSession {
  private closed = false;
  /** Set when the child died under this session: later runs repeat the fault. */
  private fault: Error | null = null;
  private unwatch: (() => void) | null = null;

  constructor(
    private readonly rt: SandboxModelRuntime,
    private readonly child: SandboxChild,
    readonly executionProvider: string,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    private readonly role: string,
  ) {}

  /** The run's signal: once it aborts, every later call fails the same way (the child is gone by then). */
  watch(signal: AbortSignal, onAbort: () => void) {
    const stop = () => {
      this.fault ??= abortFault(this.role, signal);
      onAbort();
    };
    signal.removeEventListener("abort", onAbort);
    signal.addEventListener("abort", stop, { once: true });
    this.unwatch = () => signal.removeEventListener("abort", stop);
  }

  async run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    if (this.closed) throw new Error("run() on a closed model session");
    if (this.fault) throw this.fault;
    let reply: Reply;
    try {
      const [msg, bytes] = runRequest(feeds);
      reply = await this.rt.call(this.child, msg, bytes, "run", this.role);
    } catch (e) {
      this.fault = e as Error;
      throw e;
    }
    if (!reply.ok) throw this.rt.refusal(this.child, reply, "run");
    return checkOutputs(reply.outputs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    try {
      if (!this.child.gone) {
        const r = await this.child.request({ op: "close" }, this.rt.o.loadTimeoutMs);
        if (!r.ok) this.child.retire = true;
      }
    } catch {
      this.child.kill();
    } finally {
      this.rt.pool.release(this.child);
    }
  }
}

/**
 * What a request gets when the run's budget runs out: the student's model is to blame for its own slowness
 * (MODEL_TIMEOUT, a `rejected` result); a reference model belongs to the problem, so the grader sees the reason.
 */
function abortFault(role: string, signal: AbortSignal): Error {
  if (role === "submission")
    return new ModelFault("MODEL_TIMEOUT", "Grading ran out of time while your model was running, so it was stopped.");
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`the grading run was aborted: ${String(reason)}`);
}

/** `p`, unless the signal aborts first; a value that arrives after the abort is handed to `late` (e.g. released). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined, role: string, late?: (v: T) => void): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortFault(role, signal));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) late?.(v);
        else resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** A run request: each feed's name, dtype and dims; the data go as the request's bytes, in the same order. */
function runRequest(feeds: Record<string, Tensor>): [Record<string, unknown>, TensorData[]] {
  const entries = Object.entries(feeds);
  const msg = { op: "run", feeds: entries.map(([name, t]) => ({ name, dtype: t.dtype, dims: t.dims })) };
  return [msg, entries.map(([, t]) => t.data)];
}

const EXTERNAL_SIGNALS = new Set<NodeJS.Signals>(["SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"]);
const OUT_OF_MEMORY = /bad_alloc|failed to allocate|out of memory|cannot allocate memory|ENOMEM|allocation failed/i;

const ARRAYS: Record<DType, new (n: number) => Tensor["data"]> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

/** The child is not trusted to be well-formed: a model that broke it could say anything. */
function checkOutputs(raw: unknown): Record<string, Tensor> {
  const malformed = () => new ModelFault("MODEL_CRASHED", "The runtime returned a malformed result for this model.");
  if (typeof raw !== "object" || raw === null) throw malformed();
  return Object.fromEntries(
    Object.entries(raw as Record<string, { dtype?: unknown; dims?: unknown; data?: unknown }>).map(([name, t]) => {
      const dtype = dtypeSchema.safeParse(t?.dtype);
      if (!dtype.success)
        throw new ModelFault(
          "MODEL_BAD_OUTPUT",
          `Output '${clean(name)}' has element type ${clean(String(t?.dtype))}; graders read ${dtypeSchema.options.join(", ")}.`,
        );
      const dims = t.dims;
      if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw malformed();
      const data = t.data;
      if (!(data instanceof ARRAYS[dtype.data]) || data.length !== dims.reduce((p: number, d: number) => p * d, 1)) throw malformed();
      return [name, { dtype: dtype.data, dims: [...(dims as number[])], data: data as Tensor["data"] }];
    }),
  );
}

/** onnxruntime's messages, fit for a student: no host paths (file names only), no colour codes, bounded. */
export function clean(message: string): string {
  return (
    message
      // eslint-disable-next-line no-control-regex
      .replace(/\u001b\[[0-9;]*m/g, "")
      .replace(/(?:[A-Za-z]:)?(?:[\\/][^\s\\/'"`:()[\]]+)+[\\/]([^\s\\/'"`:()[\]]+)/g, "$1")
      .replace(/\s+/g, " ")
      .trim()
      .slice(0, 600)
  );
}

function ortPackageVersion(): string {
  for (let dir = dirname(ORT_ENTRY); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "onnxruntime-node" && pkg.version) return pkg.version;
    } catch {
      // not this directory
    }
  }
  return basename(dirname(ORT_ENTRY));
}
