/**
 * A common mistake: treating the 2AFC proportions as if chance were 0 (γ = 0), i.e. putting the
 * threshold where half the trials are correct. Fitted by the same kind of grid search, it lands
 * the threshold far too low and the slope too shallow for the real model.
 */
interface Data {
  x: number[];
  n: number[];
  k: number[];
}

export default ({ x, n, k }: Data): { alpha: number; beta: number; lambda: number } => {
  let best = { alpha: 0, beta: 1, lambda: 0 };
  let bestLL = -Infinity;
  for (let a = -10; a <= 15; a += 0.05)
    for (let lb = -3; lb <= 3; lb += 0.05) {
      const beta = Math.exp(lb);
      let ll = 0;
      x.forEach((xi, i) => {
        const p = Math.min(1 - 1e-12, Math.max(1e-12, 1 / (1 + Math.exp(-beta * (xi - a)))));
        ll += k[i]! * Math.log(p) + (n[i]! - k[i]!) * Math.log(1 - p);
      });
      if (ll > bestLL) [best, bestLL] = [{ alpha: a, beta, lambda: 0 }, ll];
    }
  return best;
};
