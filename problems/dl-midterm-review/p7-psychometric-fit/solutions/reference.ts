/**
 * A student's fit: maximum likelihood by grid search, refined by zooming the grid around the
 * best point. Logistic ψ with γ = 0.5 and 0 ≤ λ ≤ 0.1, as in the statement.
 */
interface Data {
  x: number[];
  n: number[];
  k: number[];
}
interface Fit {
  alpha: number;
  beta: number;
  lambda: number;
}

const GUESS = 0.5;
const LAPSE_MAX = 0.1;

function logLikelihood({ alpha, beta, lambda }: Fit, { x, n, k }: Data): number {
  let ll = 0;
  x.forEach((xi, i) => {
    const psi = GUESS + (1 - GUESS - lambda) / (1 + Math.exp(-beta * (xi - alpha)));
    const p = Math.min(1 - 1e-12, Math.max(1e-12, psi));
    ll += k[i]! * Math.log(p) + (n[i]! - k[i]!) * Math.log(1 - p);
  });
  return ll;
}

const steps = (lo: number, hi: number, count: number) => Array.from({ length: count }, (_, i) => lo + ((hi - lo) * i) / (count - 1));

export default (data: Data): Fit => {
  const lo = Math.min(...data.x);
  const hi = Math.max(...data.x);
  // alpha on the intensity axis, log(beta), lambda: a coarse box, shrunk around the best point.
  let box = { alpha: [lo - 2, hi + 2], logBeta: [Math.log(0.05), Math.log(20)], lambda: [0, LAPSE_MAX] };
  let best: Fit = { alpha: (lo + hi) / 2, beta: 1, lambda: 0 };
  let bestLL = -Infinity;
  for (let round = 0; round < 8; round++) {
    for (const alpha of steps(box.alpha[0]!, box.alpha[1]!, 25))
      for (const logBeta of steps(box.logBeta[0]!, box.logBeta[1]!, 25))
        for (const lambda of steps(box.lambda[0]!, box.lambda[1]!, 11)) {
          const fit = { alpha, beta: Math.exp(logBeta), lambda };
          const ll = logLikelihood(fit, data);
          if (ll > bestLL) [best, bestLL] = [fit, ll];
        }
    const shrink = (range: number[], centre: number, min = -Infinity, max = Infinity) => {
      const half = (range[1]! - range[0]!) / 4;
      return [Math.max(min, centre - half), Math.min(max, centre + half)];
    };
    box = {
      alpha: shrink(box.alpha, best.alpha),
      logBeta: shrink(box.logBeta, Math.log(best.beta)),
      lambda: shrink(box.lambda, best.lambda, 0, LAPSE_MAX),
    };
  }
  return best;
};
