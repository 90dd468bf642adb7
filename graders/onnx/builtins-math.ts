/**
 * The arithmetic of the onnx-function builtins, in float64 so that the reference is more exact than
 * any float32 submission it is compared with. Plain functions on row-major arrays; builtins.ts wires
 * them to config and shapes.
 */

/** A row-major float64 tensor. */
export interface F64 {
  dims: number[];
  data: Float64Array;
}

export const sizeOf = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);
const scalar = (v: number): F64 => ({ dims: [], data: Float64Array.of(v) });
/** Rows of an [N, ...] tensor as [N, features] (features = product of the other dims). */
const rows = (t: F64): { n: number; f: number } => ({ n: t.dims[0]!, f: sizeOf(t.dims.slice(1)) });

/** [N, C, ...spatial] → [N, C]: the mean over every spatial position. */
export function averageColour(x: F64): F64 {
  const [n, c] = x.dims as [number, number];
  const per = sizeOf(x.dims.slice(2));
  const out = new Float64Array(n * c);
  for (let i = 0; i < n * c; i++) {
    let s = 0;
    for (let p = 0; p < per; p++) s += x.data[i * per + p]!;
    out[i] = s / per;
  }
  return { dims: [n, c], data: out };
}

/** KL(N(mu, e^logvar) ‖ N(0, I)) per row: −½ Σ (1 + logvar − mu² − e^logvar). */
export function vaeKl(mu: F64, logvar: F64): F64 {
  const { n, f } = rows(mu);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < f; j++) {
      const m = mu.data[i * f + j]!;
      const lv = logvar.data[i * f + j]!;
      s += 1 + lv - m * m - Math.exp(lv);
    }
    out[i] = -0.5 * s;
  }
  return { dims: [n], data: out };
}

/** PyTorch's binary_cross_entropy clamps its logarithms at −100; the reference does the same. */
const clampedLog = (v: number): number => Math.max(Math.log(v), -100);

/** Per-row reconstruction (summed over features) + beta · KL. */
export function vaeLoss(x: F64, xHat: F64, mu: F64, logvar: F64, opts: { reconstruction: "mse" | "bce"; beta: number }): F64 {
  const { n, f } = rows(x);
  const kl = vaeKl(mu, logvar).data;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let rec = 0;
    for (let j = 0; j < f; j++) {
      const t = x.data[i * f + j]!;
      const p = xHat.data[i * f + j]!;
      rec += opts.reconstruction === "mse" ? (t - p) ** 2 : -(t * clampedLog(p) + (1 - t) * clampedLog(1 - p));
    }
    out[i] = rec + opts.beta * kl[i]!;
  }
  return { dims: [n], data: out };
}

/** Row-by-row inner products: [N, D] → X Xᵀ [N, N]. */
export function gram(x: F64): F64 {
  const { n, f } = rows(x);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < f; k++) s += x.data[i * f + k]! * x.data[j * f + k]!;
      out[i * n + j] = out[j * n + i] = s;
    }
  }
  return { dims: [n, n], data: out };
}

/** Representational dissimilarity matrix: 1 − Pearson correlation between rows. */
export function rdm(x: F64): F64 {
  const { n, f } = rows(x);
  const z = new Float64Array(n * f);
  for (let i = 0; i < n; i++) {
    const row = x.data.subarray(i * f, (i + 1) * f);
    const mean = row.reduce((a, b) => a + b, 0) / f;
    const norm = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0));
    for (let k = 0; k < f; k++) z[i * f + k] = (row[k]! - mean) / norm;
  }
  const g = gram({ dims: [n, f], data: z });
  return { dims: g.dims, data: g.data.map((v) => 1 - v) };
}

/** Rows scaled to unit L2 norm; a zero row stays zero (similar to nothing), as torch's F.normalize leaves it. */
export function normalizeRows(data: Float64Array, n: number, f: number): Float64Array {
  const out = data.slice();
  for (let i = 0; i < n; i++) {
    const row = out.subarray(i * f, (i + 1) * f);
    const norm = Math.sqrt(row.reduce((s, v) => s + v * v, 0));
    if (norm > 0) for (let k = 0; k < f; k++) row[k]! /= norm;
  }
  return out;
}

/**
 * SimCLR's NT-Xent: the 2N views z1 ∪ z2, cosine similarities over temperature; each view's loss is
 * the cross entropy of picking its partner (i ↔ i + N) among the 2N − 1 other views; mean over views.
 */
export function ntXent(z1: F64, z2: F64, temperature: number): F64 {
  const { n, f } = rows(z1);
  const views = 2 * n;
  const joined = new Float64Array(views * f);
  joined.set(z1.data);
  joined.set(z2.data, n * f);
  const z = normalizeRows(joined, views, f);
  const sim = gram({ dims: [views, f], data: z }).data.map((v) => v / temperature);
  let total = 0;
  for (let i = 0; i < views; i++) {
    const row = sim.subarray(i * views, (i + 1) * views);
    let max = -Infinity;
    for (let k = 0; k < views; k++) if (k !== i) max = Math.max(max, row[k]!);
    let sum = 0;
    for (let k = 0; k < views; k++) if (k !== i) sum += Math.exp(row[k]! - max);
    total += max + Math.log(sum) - row[(i + n) % views]!;
  }
  return scalar(total / views);
}

/** Columns standardised over the batch (mean 0, std 1; unbiased std divides by N − 1, like torch.std). */
function standardiseColumns(t: F64, unbiased: boolean): Float64Array {
  const { n, f } = rows(t);
  const out = new Float64Array(n * f);
  for (let j = 0; j < f; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += t.data[i * f + j]!;
    mean /= n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += (t.data[i * f + j]! - mean) ** 2;
    const std = Math.sqrt(ss / (unbiased ? n - 1 : n));
    for (let i = 0; i < n; i++) out[i * f + j] = (t.data[i * f + j]! - mean) / std;
  }
  return out;
}

/** Barlow Twins: C = z1ᵀz2 / N of the standardised embeddings; Σ(1 − C_ii)² + λ Σ_{i≠j} C_ij². */
export function barlowTwins(z1: F64, z2: F64, lambda: number, unbiased: boolean): F64 {
  const { n, f } = rows(z1);
  const a = standardiseColumns(z1, unbiased);
  const b = standardiseColumns(z2, unbiased);
  let loss = 0;
  for (let i = 0; i < f; i++) {
    for (let j = 0; j < f; j++) {
      let c = 0;
      for (let r = 0; r < n; r++) c += a[r * f + i]! * b[r * f + j]!;
      c /= n;
      loss += i === j ? (1 - c) ** 2 : lambda * c * c;
    }
  }
  return scalar(loss);
}

/** The proximal operator of λ‖·‖₁: sign(x) · max(|x| − λ, 0), elementwise. */
export function softThreshold(x: F64, lambda: number): F64 {
  return { dims: [...x.dims], data: x.data.map((v) => (Math.abs(v) <= lambda ? 0 : Math.sign(v) * (Math.abs(v) - lambda))) };
}
