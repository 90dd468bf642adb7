import { EigenvalueDecomposition, Matrix } from "ml-matrix";
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

/** The largest eigenvalue of a symmetric PSD k × k matrix (row-major). */
export function largestEigenvalue(g: Float64Array, k: number): number {
  const { realEigenvalues } = new EigenvalueDecomposition(Matrix.from1DArray(k, k, Array.from(g)), { assumeSymmetric: true });
  return Math.max(0, ...realEigenvalues);
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
  const D = Matrix.from1DArray(d, k, Array.from(dict));
  const g = D.transpose().mmul(D);
  const lip = largestEigenvalue(Float64Array.from(g.to1DArray()), k);
  const xd = Matrix.from1DArray(n, d, Array.from(x)).mmul(D); // x D, fixed across iterations
  const t = lambda / lip;
  let h = Matrix.zeros(n, k);
  for (let it = 0; it < iterations; it++) {
    // h − (h DᵀD − x D) / L, then the soft threshold at λ / L.
    h = h.clone().sub(h.mmul(g).sub(xd).div(lip));
    h.apply((i, j) => {
      const v = h.get(i, j);
      h.set(i, j, Math.sign(v) * Math.max(Math.abs(v) - t, 0));
    });
  }
  return Float64Array.from(h.to1DArray());
}
