/** One ISTA step, written out loop by loop (a cross-check of the mathjs formula in problem.yaml). */
interface Params {
  x: number[];
  D: number[][];
  h: number[];
  lambda: number;
  t: number;
}

export default ({ x, D, h, lambda, t }: Params): { value: number[] } => {
  const residual = D.map((row, i) => row.reduce((s, d, j) => s + d * h[j]!, 0) - x[i]!);
  const gradient = h.map((_, j) => D.reduce((s, row, i) => s + row[j]! * residual[i]!, 0));
  const threshold = t * lambda;
  const value = h.map((hj, j) => {
    const v = hj - t * gradient[j]!;
    return Math.sign(v) * Math.max(Math.abs(v) - threshold, 0);
  });
  return { value };
};
