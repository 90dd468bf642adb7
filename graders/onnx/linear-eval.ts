import { normalizeRows } from "./builtins-math.ts";

/**
 * The evaluation protocol of self-supervised representations (SimCLR, MoCo, Barlow Twins): a linear
 * classifier and a k-nearest-neighbour classifier on frozen embeddings. Everything is float64 and
 * free of randomness (zero init, full-batch L-BFGS, fixed iteration cap, ordered tie-breaks), so a
 * grade is reproducible bit for bit from the embeddings.
 */

/** A row-major matrix: `rows` samples of `cols` features. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

/**
 * Centres and scales every column with the statistics of `train` (population std) and applies the
 * same map to the others. A constant column (std < 1e-8) carries no information and becomes 0
 * instead of dividing by zero.
 */
export function standardize(train: Matrix, ...others: Matrix[]): Matrix[] {
  const { rows, cols } = train;
  const mean = new Float64Array(cols);
  const std = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j]! += train.data[i * cols + j]! / rows;
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      const d = train.data[i * cols + j]! - mean[j]!;
      std[j]! += (d * d) / rows;
    }
  for (let j = 0; j < cols; j++) std[j] = std[j]! < 1e-16 ? 1 : Math.sqrt(std[j]!);
  return [train, ...others].map((m) => ({
    rows: m.rows,
    cols,
    data: m.data.map((v, k) => (v - mean[k % cols]!) / std[k % cols]!),
  }));
}

export interface LinearClassifier {
  classes: number;
  /** [cols][classes], row-major. */
  weights: Float64Array;
  bias: Float64Array;
}

/**
 * Multinomial logistic regression: minimises mean cross-entropy + l2/2·‖W‖² (the bias is not
 * penalised) from zero with L-BFGS (memory 10, Armijo backtracking) for at most `iterations` steps.
 * The loss is strictly convex for l2 > 0, so the fixed cap only decides how close to the optimum we
 * stop, identically on every run.
 */
export function fitLogistic(x: Matrix, y: Int32Array, classes: number, opts: { l2: number; iterations: number }): LinearClassifier {
  const { rows: n, cols: d } = x;
  const size = d * classes + classes;
  const probs = new Float64Array(n * classes);

  const evaluate = (theta: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const logits = probs.subarray(i * classes, (i + 1) * classes);
      for (let c = 0; c < classes; c++) logits[c] = theta[d * classes + c]!;
      for (let j = 0; j < d; j++) {
        const v = x.data[i * d + j]!;
        if (v !== 0) for (let c = 0; c < classes; c++) logits[c]! += v * theta[j * classes + c]!;
      }
      let max = -Infinity;
      for (let c = 0; c < classes; c++) max = Math.max(max, logits[c]!);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(logits[c]! - max);
      loss += max + Math.log(sum) - logits[y[i]!]!;
      for (let c = 0; c < classes; c++) logits[c] = (Math.exp(logits[c]! - max) / sum - (c === y[i] ? 1 : 0)) / n;
      for (let j = 0; j < d; j++) {
        const v = x.data[i * d + j]!;
        if (v !== 0) for (let c = 0; c < classes; c++) grad[j * classes + c]! += v * logits[c]!;
      }
      for (let c = 0; c < classes; c++) grad[d * classes + c]! += logits[c]!;
    }
    loss /= n;
    for (let k = 0; k < d * classes; k++) {
      loss += (opts.l2 / 2) * theta[k]! * theta[k]!;
      grad[k]! += opts.l2 * theta[k]!;
    }
    return loss;
  };

  const theta = lbfgs(evaluate, new Float64Array(size), opts.iterations);
  return { classes, weights: theta.slice(0, d * classes), bias: theta.slice(d * classes) };
}

const dot = (a: Float64Array, b: Float64Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** Limited-memory BFGS with a backtracking (Armijo) line search; returns the last accepted point. */
export function lbfgs(f: (x: Float64Array, grad: Float64Array) => number, x0: Float64Array, iterations: number, memory = 10): Float64Array {
  let x = x0.slice();
  let g = new Float64Array(x.length);
  let fx = f(x, g);
  const ss: Float64Array[] = [];
  const ys: Float64Array[] = [];
  const xNew = new Float64Array(x.length);
  let gNew = new Float64Array(x.length);
  for (let it = 0; it < iterations; it++) {
    if (g.reduce((m, v) => Math.max(m, Math.abs(v)), 0) < 1e-9) break;
    // Two-loop recursion: dir = -H·g, with H0 scaled by the newest curvature pair.
    const q = g.slice();
    const alphas: number[] = [];
    for (let k = ss.length - 1; k >= 0; k--) {
      const a = dot(ss[k]!, q) / dot(ys[k]!, ss[k]!);
      alphas[k] = a;
      for (let i = 0; i < q.length; i++) q[i]! -= a * ys[k]![i]!;
    }
    const last = ss.length - 1;
    const gamma = last >= 0 ? dot(ss[last]!, ys[last]!) / dot(ys[last]!, ys[last]!) : 1 / Math.max(1, Math.sqrt(dot(g, g)));
    for (let i = 0; i < q.length; i++) q[i]! *= gamma;
    for (let k = 0; k < ss.length; k++) {
      const b = dot(ys[k]!, q) / dot(ys[k]!, ss[k]!);
      for (let i = 0; i < q.length; i++) q[i]! += ss[k]![i]! * (alphas[k]! - b);
    }
    let dir = q.map((v) => -v);
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Not a descent direction (lost curvature information): restart from steepest descent.
      ss.length = ys.length = 0;
      dir = g.map((v) => -v / Math.max(1, Math.sqrt(dot(g, g))));
      slope = dot(g, dir);
    }
    let step = 1;
    let fNew = Infinity;
    for (let tries = 0; tries < 40; tries++, step /= 2) {
      for (let i = 0; i < x.length; i++) xNew[i] = x[i]! + step * dir[i]!;
      fNew = f(xNew, gNew);
      if (fNew <= fx + 1e-4 * step * slope) break;
    }
    if (!(fNew < fx)) break; // no progress possible at float64 precision
    const s = xNew.map((v, i) => v - x[i]!);
    const yv = gNew.map((v, i) => v - g[i]!);
    if (dot(s, yv) > 1e-12) {
      ss.push(s);
      ys.push(yv);
      if (ss.length > memory) {
        ss.shift();
        ys.shift();
      }
    }
    x = xNew.slice();
    [g, gNew] = [gNew, g];
    fx = fNew;
  }
  return x;
}

export function predictLinear(model: LinearClassifier, x: Matrix): Int32Array {
  const { classes } = model;
  const out = new Int32Array(x.rows);
  const logits = new Float64Array(classes);
  for (let i = 0; i < x.rows; i++) {
    logits.set(model.bias);
    for (let j = 0; j < x.cols; j++) {
      const v = x.data[i * x.cols + j]!;
      for (let c = 0; c < classes; c++) logits[c]! += v * model.weights[j * classes + c]!;
    }
    out[i] = argmax(logits);
  }
  return out;
}

/** Index of the largest value; the first one on ties. */
export function argmax(v: ArrayLike<number>, start = 0, length = v.length - start): number {
  let best = 0;
  for (let c = 1; c < length; c++) if (v[start + c]! > v[start + best]!) best = c;
  return best;
}

/**
 * k-NN on cosine similarity of the raw embeddings (as in InstDisc/DINO): majority vote of the k most
 * similar training points; ties go to the class with the larger summed similarity, then the lower
 * class. Neighbours with equal similarity are taken in training order.
 */
export function knnPredict(train: Matrix, trainY: Int32Array, test: Matrix, k: number, classes: number): Int32Array {
  const a = normalizeRows(train.data, train.rows, train.cols);
  const b = normalizeRows(test.data, test.rows, test.cols);
  const d = train.cols;
  const kk = Math.min(k, train.rows);
  const out = new Int32Array(test.rows);
  const topSim = new Float64Array(kk);
  const topIdx = new Int32Array(kk);
  for (let i = 0; i < test.rows; i++) {
    let filled = 0;
    for (let t = 0; t < train.rows; t++) {
      let sim = 0;
      for (let j = 0; j < d; j++) sim += a[t * d + j]! * b[i * d + j]!;
      if (filled === kk && sim <= topSim[kk - 1]!) continue;
      // Insertion into the sorted top-k list; strict > keeps earlier training points first on ties.
      let pos = filled < kk ? filled++ : kk - 1;
      while (pos > 0 && sim > topSim[pos - 1]!) {
        topSim[pos] = topSim[pos - 1]!;
        topIdx[pos] = topIdx[pos - 1]!;
        pos--;
      }
      topSim[pos] = sim;
      topIdx[pos] = t;
    }
    const votes = new Float64Array(classes);
    const weight = new Float64Array(classes);
    for (let r = 0; r < filled; r++) {
      votes[trainY[topIdx[r]!]!]! += 1;
      weight[trainY[topIdx[r]!]!]! += topSim[r]!;
    }
    let best = 0;
    for (let c = 1; c < classes; c++) if (votes[c]! > votes[best]! || (votes[c] === votes[best] && weight[c]! > weight[best]!)) best = c;
    out[i] = best;
  }
  return out;
}

export function accuracy(pred: Int32Array, y: Int32Array): number {
  let right = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) right++;
  return y.length === 0 ? 0 : right / y.length;
}
