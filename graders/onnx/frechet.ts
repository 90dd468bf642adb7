import { covariance, EigenvalueDecomposition, Matrix } from "ml-matrix";

/**
 * Fréchet distance between Gaussians fitted to features (the FID recipe, with the course's own
 * classifier in place of Inception), in float64 on ml-matrix:
 *
 *   FD = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½)
 *
 * Both square roots are of symmetric positive semi-definite matrices, so a symmetric
 * eigen-decomposition (ml-matrix's Householder tridiagonalisation + QL, the EISPACK/JAMA routines)
 * gives them exactly, with tiny negative eigenvalues from rounding clipped to 0. scipy's general
 * sqrtm, which FID code uses, can return complex parts for the same input.
 */

const square = (a: ArrayLike<number>, n: number): Matrix => Matrix.from1DArray(n, n, Array.from(a));

/** Mean and unbiased covariance (divisor n − 1, as numpy.cov) of `rows` samples of `cols` features. */
export function meanCov(data: ArrayLike<number>, rows: number, cols: number): { mean: Float64Array; cov: Float64Array } {
  const x = Matrix.from1DArray(rows, cols, Array.from(data));
  const mean = Float64Array.from(x.mean("column"));
  // numpy.cov of a single sample is NaN; 0 keeps the distance finite and says "no spread".
  const cov = rows > 1 ? Float64Array.from(covariance(x).to1DArray()) : new Float64Array(cols * cols);
  return { mean, cov };
}

/** Eigenvalues and eigenvectors (columns) of a symmetric matrix. */
export function symmetricEigen(matrix: Matrix): { values: number[]; vectors: Matrix } {
  const e = new EigenvalueDecomposition(matrix, { assumeSymmetric: true });
  return { values: e.realEigenvalues, vectors: e.eigenvectorMatrix };
}

const rootOf = (m: Matrix): Matrix => {
  const { values, vectors } = symmetricEigen(m);
  return vectors.mmul(Matrix.diag(values.map((v) => Math.sqrt(Math.max(0, v))))).mmul(vectors.transpose());
};

/** The PSD square root V·diag(√max(λ, 0))·Vᵀ of a symmetric matrix (row-major n×n). */
export const sqrtPsd = (matrix: ArrayLike<number>, n: number): Float64Array => Float64Array.from(rootOf(square(matrix, n)).to1DArray());

export function frechetDistance(mu1: ArrayLike<number>, cov1: ArrayLike<number>, mu2: ArrayLike<number>, cov2: ArrayLike<number>): number {
  const n = mu1.length;
  if (mu2.length !== n || cov1.length !== n * n || cov2.length !== n * n) throw new Error("Fréchet distance: mismatched dimensions");
  let meanTerm = 0;
  let traces = 0;
  for (let i = 0; i < n; i++) {
    meanTerm += (mu1[i]! - mu2[i]!) ** 2;
    traces += cov1[i * n + i]! + cov2[i * n + i]!;
  }
  const root1 = rootOf(square(cov1, n));
  const m = root1.mmul(square(cov2, n)).mmul(root1);
  // Symmetrise: rounding leaves m slightly asymmetric, and the symmetric solver reads one triangle.
  const { values } = symmetricEigen(m.add(m.transpose()).mul(0.5));
  const traceRoot = values.reduce((s, v) => s + Math.sqrt(Math.max(0, v)), 0);
  // The exact value is ≥ 0; rounding can leave −1e-13 when both distributions are the same.
  return Math.max(0, meanTerm + traces - 2 * traceRoot);
}
