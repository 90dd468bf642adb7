/** Classification metrics of the onnx-classifier grader, from a confusion matrix. */

export interface ClassMetrics {
  /** confusion[t][p]: samples of true class t predicted as p. */
  confusion: number[][];
  accuracy: number;
  /** sklearn's macro-F1: the mean F1 over classes present in the labels or the predictions. */
  macroF1: number;
  /** Per class; NaN when the class has no samples. */
  recall: number[];
  support: number[];
}

/** Index of the largest entry of each row of logits/probabilities [n, c]; ties go to the first. */
export function argmaxRows(data: ArrayLike<number>, n: number, c: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (data[i * c + j]! > data[i * c + best]!) best = j;
    out[i] = best;
  }
  return out;
}

export function classMetrics(labels: ArrayLike<number>, predicted: ArrayLike<number>, classes: number): ClassMetrics {
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) confusion[labels[i]!]![predicted[i]!]!++;
  const support = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const predictedCount = confusion[0]!.map((_, p) => confusion.reduce((s, row) => s + row[p]!, 0));
  const correct = confusion.reduce((s, row, t) => s + row[t]!, 0);
  const recall = support.map((n, t) => (n === 0 ? NaN : confusion[t]![t]! / n));
  const f1: number[] = [];
  for (let t = 0; t < classes; t++) {
    if (support[t] === 0 && predictedCount[t] === 0) continue; // absent from both: not averaged, as in sklearn
    const tp = confusion[t]![t]!;
    f1.push(tp === 0 ? 0 : (2 * tp) / (support[t]! + predictedCount[t]!));
  }
  return {
    confusion,
    accuracy: labels.length === 0 ? 0 : correct / labels.length,
    macroF1: f1.length === 0 ? 0 : f1.reduce((a, b) => a + b, 0) / f1.length,
    recall,
    support,
  };
}

/** The most frequent mistakes, "true → predicted: count", largest first. */
export function topConfusions(confusion: number[][], names: readonly string[], limit = 5): string[] {
  const cells: [number, number, number][] = [];
  confusion.forEach((row, t) => row.forEach((n, p) => t !== p && n > 0 && cells.push([n, t, p])));
  cells.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
  return cells.slice(0, limit).map(([n, t, p]) => `${names[t]} → ${names[p]}: ${n}`);
}
