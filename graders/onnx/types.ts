import { z } from "zod";

/**
 * The contract between ONNX graders, the sandbox that runs models, and the worker that joins them.
 * Graders never load onnxruntime themselves: they get a ModelRuntime, which in production runs every
 * model (the student's and the reference) in a sandboxed child process.
 */

export const dtypeSchema = z.enum(["float32", "float64", "int64", "int32", "uint8", "bool"]);
export type DType = z.infer<typeof dtypeSchema>;

export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** A plain tensor that crosses process boundaries (structured clone) unchanged. */
export interface Tensor {
  dtype: DType;
  dims: number[];
  data: TensorData;
}

/** A dimension is fixed (a number) or free and named (e.g. "N" for the batch). */
export const dimSchema = z.union([z.number().int().min(1), z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)]);
export type Dim = z.infer<typeof dimSchema>;

export const tensorSpecSchema = z.strictObject({
  name: z.string().min(1).max(200),
  dtype: dtypeSchema.default("float32"),
  shape: z.array(dimSchema).max(8),
});
export type TensorSpec = z.infer<typeof tensorSpecSchema>;

export const budgetSchema = z.strictObject({
  /** Upload size limit for this problem (the server-wide cap still applies). */
  maxBytes: z
    .number()
    .int()
    .min(1)
    .default(16 * 1024 * 1024),
  /** Total elements of all initializers and Constant tensors. */
  maxParameters: z.number().int().min(0).default(5_000_000),
  /** Nodes, counting those inside subgraphs and functions. */
  maxNodes: z.number().int().min(1).default(2_000),
  /** The largest single initializer/Constant, in bytes: stops constants that blow up memory. */
  maxConstantBytes: z
    .number()
    .int()
    .min(1)
    .default(64 * 1024 * 1024),
  /**
   * Elements of one tensor that Expand, Tile, Resize, Pad, Range, OneHot or ConstantOfShape may make, where
   * preflight can compute it from the declared shapes and constants (a free dim such as N counts as 1).
   */
  maxActivationElements: z
    .number()
    .int()
    .min(1)
    .default(64 * 1024 * 1024),
  /** Iterations of a Loop with a constant trip count or a Scan over a tensor of known length (nested: multiplied). */
  maxLoopIterations: z.number().int().min(1).default(100_000),
  /**
   * ai.onnx operators beyond the default list: `allow` adds the risky ones back (e.g. RandomNormal for a
   * sampling problem), `deny` forbids more. Default: every standard operator but random, string and image-decoding ones.
   */
  operators: z
    .strictObject({
      allow: z
        .array(z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/))
        .max(200)
        .default([]),
      deny: z
        .array(z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/))
        .max(200)
        .default([]),
    })
    .prefault({}),
});
export type Budget = z.infer<typeof budgetSchema>;
/** A budget as written in a config: every field optional. */
export type BudgetInput = z.input<typeof budgetSchema>;

/** What an uploaded model must look like; checked by preflight before any session exists. */
export interface ModelSpec {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** The size limits are required; the graph rules (activations, loops, operators) default when absent. */
  budget: Pick<Budget, "maxBytes" | "maxParameters" | "maxNodes" | "maxConstantBytes"> & BudgetInput;
}

export type ModelFaultCode =
  | "MODEL_LOAD_FAILED" // onnxruntime refused to create a session
  | "MODEL_RUN_FAILED" // run() threw (shape or type mismatch inside the graph, bad op use)
  | "MODEL_TIMEOUT" // wall-clock limit: the child was killed
  | "MODEL_OUT_OF_MEMORY" // address-space cap hit
  | "MODEL_CRASHED" // the child died for another reason
  | "MODEL_BAD_OUTPUT"; // missing output, wrong dims or dtype, non-finite values where not allowed

/**
 * A fault of the model being run: graders turn it into a `rejected` result with this message, which is for
 * the student and never carries what the model was fed. `staffDetail` is the runtime's own text (it can
 * quote shapes and values of private inputs): staff only (a test's staffMessage).
 */
export class ModelFault extends Error {
  constructor(
    readonly code: ModelFaultCode,
    message: string,
    readonly staffDetail?: string,
  ) {
    super(message);
    this.name = "ModelFault";
  }
}

export interface ModelSession {
  /** The provider that actually runs this session ("cuda" or "cpu"), after any fallback. */
  readonly executionProvider: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Throws ModelFault for faults of the model; other errors are infrastructure failures. */
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  close(): Promise<void>;
}

/** How models ran on this host (memory cap, account, network), stored on the grade as Grade.isolation. */
export interface Isolation {
  /** The address-space cap of a child, or null when none applied (SANDBOX_ALLOW_UNCAPPED). */
  memoryCapMb: number | null;
  user: string;
  /** "none": a network namespace without interfaces; "host": the worker's network. */
  network: "none" | "host";
  /** Whether a crashing child may write a core dump. */
  core: boolean;
  /** The process/thread limit of a child, or null. */
  nprocs: number | null;
}

export interface ModelRuntime {
  readonly ortVersion: string;
  /** The sandbox's isolation facts; absent for in-process runtimes (tests, never production). */
  readonly isolation?: Isolation;
  /**
   * Throws ModelFault when the model cannot be loaded. `role` is for logs and limits.
   * When `signal` aborts (the grading run's budget ran out), the session's child is killed at once:
   * a request in flight of a "submission" session rejects with ModelFault("MODEL_TIMEOUT"), one of a
   * "reference" session with the signal's reason; later calls reject with the reason too.
   */
  open(model: Uint8Array, opts: { role: "submission" | "reference"; signal?: AbortSignal }): Promise<ModelSession>;
}

/** Provenance a model grader reports so that a score can be reproduced; stored on the Grade. */
export interface ModelProvenance {
  executionProvider: string;
  ortVersion: string;
  inputSeed: string;
}

/** The answer of every model problem: the upload, by content hash (the bytes come as GradeInput.model). */
export const modelAnswerSchema = z.strictObject({
  model: z.strictObject({
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int().min(1),
    filename: z.string().max(255).optional(),
  }),
});
export type ModelAnswer = z.infer<typeof modelAnswerSchema>;
