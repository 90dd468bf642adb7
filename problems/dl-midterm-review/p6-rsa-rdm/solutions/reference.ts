/** 1 − Pearson correlation between rows, computed directly (a cross-check of the mathjs formula in problem.yaml). */
export default ({ R }: { R: number[][] }): { value: number[][] } => {
  const centred = R.map((row) => {
    const mean = row.reduce((s, v) => s + v, 0) / row.length;
    return row.map((v) => v - mean);
  });
  const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
  const value = centred.map((a) => centred.map((b) => 1 - dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b))));
  return { value };
};
