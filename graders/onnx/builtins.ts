import { z } from "zod";
import * as m from "./builtins-math.ts";
import type { F64 } from "./builtins-math.ts";
import type { Dim } from "./types.ts";

/**
 * References of the onnx-function grader written in TypeScript (`reference: {builtin: name, ...params}`),
 * for functions the course asks students to build as ONNX graphs: no reference model to maintain, and
 * float64 arithmetic. Each builtin reads the config's inputs by fixed names and has one output.
 */

type Shapes = Readonly<Record<string, readonly Dim[]>>;

interface BuiltinDef<S extends z.ZodObject> {
  schema: S;
  /** The input names the builtin reads; the config's inputs must be exactly these. */
  inputs: readonly string[];
  /** The output shape from the inputs' shapes (free dims stay named), or why the shapes do not fit. */
  outputShape(shapes: Shapes): Dim[] | string;
  compute(inputs: Readonly<Record<string, F64>>, params: z.output<S>): F64;
}

/** Identity with inference: ties each builtin's compute() to its own schema's output type. */
const define = <S extends z.ZodObject>(d: BuiltinDef<S>): BuiltinDef<S> => d;
const name = <N extends string>(n: N) => z.literal(n);

const same = (a: readonly Dim[], b: readonly Dim[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const show = (s: readonly Dim[]): string => `[${s.join(", ")}]`;

/** [N, D] for every named input, all of one shape. */
function pairedMatrices(shapes: Shapes, names: readonly string[]): Dim[] | string {
  const first = shapes[names[0]!]!;
  if (first.length !== 2) return `${names[0]} must be [N, D], not ${show(first)}`;
  const other = names.find((n) => !same(shapes[n]!, first));
  return other ? `${other} must have the shape of ${names[0]} ${show(first)}, not ${show(shapes[other]!)}` : [...first];
}

const averageColour = define({
  schema: z.strictObject({ builtin: name("average-colour") }),
  inputs: ["x"],
  outputShape: ({ x }) => (x!.length >= 3 ? [x![0]!, x![1]!] : `x must be [N, C, H, W], not ${show(x!)}`),
  compute: ({ x }) => m.averageColour(x!),
});

const vaeKl = define({
  schema: z.strictObject({ builtin: name("vae-kl") }),
  inputs: ["mu", "logvar"],
  outputShape: (s) => {
    const p = pairedMatrices(s, ["mu", "logvar"]);
    return typeof p === "string" ? p : [p[0]!];
  },
  compute: ({ mu, logvar }) => m.vaeKl(mu!, logvar!),
});

const vaeLoss = define({
  schema: z.strictObject({
    builtin: name("vae-loss"),
    /** Summed over features: squared error, or binary cross entropy of x_hat (probabilities) against x. */
    reconstruction: z.enum(["mse", "bce"]),
    /** Weight of the KL term (β-VAE); 1 is the plain VAE. */
    beta: z.number().min(0).default(1),
  }),
  inputs: ["x", "x_hat", "mu", "logvar"],
  outputShape: (s) => {
    const p = pairedMatrices(s, ["mu", "logvar"]);
    if (typeof p === "string") return p;
    if (!same(s.x!, s.x_hat!)) return `x_hat must have the shape of x ${show(s.x!)}, not ${show(s.x_hat!)}`;
    if (s.x!.length < 2 || s.x![0] !== p[0]) return `x must be [N, ...] with the batch dim of mu (${String(p[0])})`;
    return [p[0]!];
  },
  compute: ({ x, x_hat, mu, logvar }, p) => m.vaeLoss(x!, x_hat!, mu!, logvar!, p),
});

const gramMatrix = define({
  schema: z.strictObject({
    builtin: name("gram-matrix"),
    /** true: 1 − Pearson correlation between rows (an RDM) instead of the inner products X Xᵀ. */
    dissimilarity: z.boolean().default(false),
  }),
  inputs: ["x"],
  outputShape: ({ x }) => (x!.length === 2 ? [x![0]!, x![0]!] : `x must be [N, D], not ${show(x!)}`),
  compute: ({ x }, p) => (p.dissimilarity ? m.rdm(x!) : m.gram(x!)),
});

const ntXent = define({
  schema: z.strictObject({ builtin: name("nt-xent"), temperature: z.number().positive() }),
  inputs: ["z1", "z2"],
  outputShape: (s) => {
    const p = pairedMatrices(s, ["z1", "z2"]);
    return typeof p === "string" ? p : [];
  },
  compute: ({ z1, z2 }, p) => m.ntXent(z1!, z2!, p.temperature),
});

const barlowTwins = define({
  schema: z.strictObject({
    builtin: name("barlow-twins"),
    lambda: z.number().min(0),
    /** torch.std (N − 1, the paper's pseudocode) or BatchNorm's biased std (N, the paper's code). */
    unbiased: z.boolean().default(true),
  }),
  inputs: ["z1", "z2"],
  outputShape: (s) => {
    const p = pairedMatrices(s, ["z1", "z2"]);
    return typeof p === "string" ? p : [];
  },
  compute: ({ z1, z2 }, p) => m.barlowTwins(z1!, z2!, p.lambda, p.unbiased),
});

const softThreshold = define({
  schema: z.strictObject({ builtin: name("soft-threshold"), lambda: z.number().min(0) }),
  inputs: ["x"],
  outputShape: ({ x }) => [...x!],
  compute: ({ x }, p) => m.softThreshold(x!, p.lambda),
});

const all = [averageColour, vaeKl, vaeLoss, gramMatrix, ntXent, barlowTwins, softThreshold] as const;

export const builtinSchema = z.discriminatedUnion("builtin", [
  averageColour.schema,
  vaeKl.schema,
  vaeLoss.schema,
  gramMatrix.schema,
  ntXent.schema,
  barlowTwins.schema,
  softThreshold.schema,
]);
export type BuiltinRef = z.output<typeof builtinSchema>;

/**
 * `reference:` of onnx-function: a file name, or a builtin. Parsed in two steps because a plain union
 * of the two reports a builtin's missing parameter as "Invalid input" on the whole field.
 */
export const referenceSchema = (file: z.ZodType<string>) =>
  z.union([file, z.looseObject({ builtin: z.string() })]).transform((v, ctx): string | BuiltinRef => {
    if (typeof v === "string") return v;
    const parsed = builtinSchema.safeParse(v);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
    return z.NEVER;
  });

const byName = new Map<string, BuiltinDef<z.ZodObject>>(all.map((d) => [d.schema.shape.builtin.value, d as never]));
const lookup = (ref: BuiltinRef): BuiltinDef<z.ZodObject> => byName.get(ref.builtin)!;

export const builtinNames = (): string[] => [...byName.keys()];
export const builtinInputs = (ref: BuiltinRef): readonly string[] => lookup(ref).inputs;

/** The builtin's output shape for the config's input shapes, or a message saying why they do not fit. */
export function builtinOutputShape(ref: BuiltinRef, shapes: Shapes): Dim[] | string {
  const def = lookup(ref);
  const missing = def.inputs.filter((n) => !shapes[n]);
  if (missing.length > 0) return `the ${ref.builtin} builtin reads inputs named ${def.inputs.join(", ")}; missing: ${missing.join(", ")}`;
  return def.outputShape(shapes);
}

export function computeBuiltin(ref: BuiltinRef, inputs: Readonly<Record<string, F64>>): F64 {
  return lookup(ref).compute(inputs, ref);
}
