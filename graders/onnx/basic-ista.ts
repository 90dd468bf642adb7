import type { Rng } from "../random.ts";

/**
 * Sparse coding for the onnx-encoder-objective grader: generated dictionaries and signals, the LASSO
 * objective, and ISTA as the reference solver. Matrices are row-major Float64Arrays; values the
 * student's model also sees are rounded to float32 first, so both sides solve the same problem.
 */

/** d × k with independent Gaussian entries, each column scaled to unit norm (the usual dictionary). */
export function randomDictionary(d: number, k: number, r: Rng): Float64Array {
  const dict = Float64Array.from({ length: d * k }, () => r.normal());
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += dict[i * k + j]! ** 2;
    const norm = Math.sqrt(s);
    for (let i = 0; i < d; i++) dict[i * k + j] = Math.fround(dict[i * k + j]! / norm);
  }
  return dict;
}

/**
 * `count` signals x = D h + noise with `sparsity` nonzero code entries each (Gaussian values on a
 * uniformly chosen support), as float32 values. Returns x [count, d].
 */
export function sparseSignals(
  dict: Float64Array,
  d: number,
  k: number,
  opts: { count: number; sparsity: number; noise: number },
  r: Rng,
): Float64Array {
  const x = new Float64Array(opts.count * d);
  const support = Array.from({ length: k }, (_, j) => j);
  for (let s = 0; s < opts.count; s++) {
    // A partial Fisher–Yates shuffle: the first `sparsity` entries are a uniform random support.
    for (let t = 0; t < opts.sparsity; t++) {
      const j = r.int(t, k - 1);
      [support[t], support[j]] = [support[j]!, support[t]!];
    }
    for (let t = 0; t < opts.sparsity; t++) {
      const j = support[t]!;
      const v = r.normal();
      for (let i = 0; i < d; i++) x[s * d + i]! += dict[i * k + j]! * v;
    }
    for (let i = 0; i < d; i++) x[s * d + i] = Math.fround(x[s * d + i]! + opts.noise * r.normal());
  }
  return x;
}

/** DᵀD, k × k. */
function gramOf(dict: Float64Array, d: number, k: number): Float64Array {
  const g = new Float64Array(k * k);
  for (let a = 0; a < k; a++)
    for (let b = 0; b <= a; b++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += dict[i * k + a]! * dict[i * k + b]!;
      g[a * k + b] = g[b * k + a] = s;
    }
  return g;
}

/** The largest eigenvalue of a symmetric PSD k × k matrix, by power iteration. */
export function largestEigenvalue(g: Float64Array, k: number, iterations = 1000): number {
  let v = new Float64Array(k).fill(1 / Math.sqrt(k));
  let lambda = 0;
  for (let it = 0; it < iterations; it++) {
    const w = new Float64Array(k);
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) w[a]! += g[a * k + b]! * v[b]!;
    // ‖G v‖ with ‖v‖ = 1 converges to the largest eigenvalue of the PSD G (unless v starts orthogonal to its eigenvector).
    const norm = Math.sqrt(w.reduce((a, b) => a + b * b, 0));
    if (norm === 0) return 0;
    v = w.map((x) => x / norm);
    if (Math.abs(norm - lambda) <= 1e-12 * norm) return norm;
    lambda = norm;
  }
  return lambda;
}

/** ½‖x − D h‖² + λ‖h‖₁ for each of the n rows of x [n, d] and h [n, k]. */
export function objectives(x: Float64Array, h: Float64Array, dict: Float64Array, d: number, k: number, lambda: number): Float64Array {
  const n = x.length / d;
  const out = new Float64Array(n);
  for (let s = 0; s < n; s++) {
    let rec = 0;
    for (let i = 0; i < d; i++) {
      let dh = 0;
      for (let j = 0; j < k; j++) dh += dict[i * k + j]! * h[s * k + j]!;
      rec += (x[s * d + i]! - dh) ** 2;
    }
    let l1 = 0;
    for (let j = 0; j < k; j++) l1 += Math.abs(h[s * k + j]!);
    out[s] = 0.5 * rec + lambda * l1;
  }
  return out;
}

/**
 * ISTA from h = 0 with step 1/L (L = largest eigenvalue of DᵀD, the gradient's Lipschitz constant):
 * h ← soft(h − (h DᵀD − x D)/L, λ/L). Returns codes [n, k].
 */
export function ista(x: Float64Array, dict: Float64Array, d: number, k: number, lambda: number, iterations: number): Float64Array {
  const n = x.length / d;
  const g = gramOf(dict, d, k);
  const lip = largestEigenvalue(g, k);
  const xd = new Float64Array(n * k); // x D, fixed across iterations
  for (let s = 0; s < n; s++)
    for (let j = 0; j < k; j++) {
      let v = 0;
      for (let i = 0; i < d; i++) v += x[s * d + i]! * dict[i * k + j]!;
      xd[s * k + j] = v;
    }
  let h = new Float64Array(n * k);
  const t = lambda / lip;
  for (let it = 0; it < iterations; it++) {
    const next = new Float64Array(n * k);
    for (let s = 0; s < n; s++)
      for (let j = 0; j < k; j++) {
        let grad = -xd[s * k + j]!;
        for (let b = 0; b < k; b++) grad += h[s * k + b]! * g[b * k + j]!;
        const v = h[s * k + j]! - grad / lip;
        next[s * k + j] = Math.sign(v) * Math.max(Math.abs(v) - t, 0);
      }
    h = next;
  }
  return h;
}
