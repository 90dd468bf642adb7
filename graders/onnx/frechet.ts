/**
 * Fréchet distance between Gaussians fitted to features (the FID recipe, with the course's own
 * classifier in place of Inception), in float64 without any linear-algebra library:
 *
 *   FD = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½)
 *
 * Both square roots are of symmetric positive semi-definite matrices, so a symmetric
 * eigen-decomposition (cyclic Jacobi: slow for big matrices, but accurate and unconditionally
 * convergent; feature sizes here are tens) gives them exactly, with tiny negative eigenvalues from
 * rounding clipped to 0. scipy's general sqrtm, which FID code uses, can return complex parts for
 * the same input.
 */

/** Mean and unbiased covariance (divisor n − 1, as numpy.cov) of `rows` samples of `cols` features. */
export function meanCov(data: ArrayLike<number>, rows: number, cols: number): { mean: Float64Array; cov: Float64Array } {
  const mean = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j]! += data[i * cols + j]!;
  for (let j = 0; j < cols; j++) mean[j]! /= rows;
  const cov = new Float64Array(cols * cols);
  const centred = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) centred[j] = data[i * cols + j]! - mean[j]!;
    for (let a = 0; a < cols; a++) for (let b = a; b < cols; b++) cov[a * cols + b]! += centred[a]! * centred[b]!;
  }
  const div = Math.max(1, rows - 1);
  for (let a = 0; a < cols; a++)
    for (let b = a; b < cols; b++) {
      cov[a * cols + b]! /= div;
      cov[b * cols + a] = cov[a * cols + b]!;
    }
  return { mean, cov };
}

/** Eigenvalues and eigenvectors (columns of `vectors`, row-major n×n) of a symmetric matrix. */
export function symmetricEigen(matrix: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i]! * a[i]!;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! * a[p * n + q]!;
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        // Rotation that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.4.1, the stable tangent).
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i]!;
  return { values, vectors: v };
}

/** The PSD square root V·diag(√max(λ, 0))·Vᵀ of a symmetric matrix. */
export function sqrtPsd(matrix: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(matrix, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const r = Math.sqrt(Math.max(0, values[k]!));
    if (r === 0) continue;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j]! += r * vectors[i * n + k]! * vectors[j * n + k]!;
  }
  return out;
}

function matmul(a: Float64Array, b: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      if (aik !== 0) for (let j = 0; j < n; j++) out[i * n + j]! += aik * b[k * n + j]!;
    }
  return out;
}

export function frechetDistance(mu1: ArrayLike<number>, cov1: ArrayLike<number>, mu2: ArrayLike<number>, cov2: ArrayLike<number>): number {
  const n = mu1.length;
  if (mu2.length !== n || cov1.length !== n * n || cov2.length !== n * n) throw new Error("Fréchet distance: mismatched dimensions");
  let meanTerm = 0;
  let traces = 0;
  for (let i = 0; i < n; i++) {
    meanTerm += (mu1[i]! - mu2[i]!) ** 2;
    traces += cov1[i * n + i]! + cov2[i * n + i]!;
  }
  const root1 = sqrtPsd(cov1, n);
  const m = matmul(matmul(root1, cov2, n), root1, n);
  // Symmetrise: rounding leaves m slightly asymmetric, and Jacobi assumes exact symmetry.
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const s = (m[i * n + j]! + m[j * n + i]!) / 2;
      m[i * n + j] = m[j * n + i] = s;
    }
  const { values } = symmetricEigen(m, n);
  let traceRoot = 0;
  for (const v of values) traceRoot += Math.sqrt(Math.max(0, v));
  // The exact value is ≥ 0; rounding can leave −1e-13 when both distributions are the same.
  return Math.max(0, meanTerm + traces - 2 * traceRoot);
}
