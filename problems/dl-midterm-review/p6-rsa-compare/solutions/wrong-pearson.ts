/** The Pearson correlation of the dissimilarities themselves, not of their ranks. */
const pearson = (a: number[], b: number[]) => {
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const [ma, mb] = [mean(a), mean(b)];
  const dot = (f: (i: number) => number) => a.reduce((s, _, i) => s + f(i), 0);
  return dot((i) => (a[i]! - ma) * (b[i]! - mb)) / Math.sqrt(dot((i) => (a[i]! - ma) ** 2) * dot((i) => (b[i]! - mb) ** 2));
};
const upper = (m: number[][]) => m.flatMap((row, i) => row.slice(i + 1));

export default ({ A, B }: { A: number[][]; B: number[][] }) => ({ value: pearson(upper(A), upper(B)) });
