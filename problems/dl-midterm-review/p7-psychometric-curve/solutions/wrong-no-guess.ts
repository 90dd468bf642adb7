/** A yes/no observer's curve: it starts at 0, as if a 2AFC observer could not guess right. */
interface Params {
  alpha: number;
  beta: number;
  lambda: number;
  x: number[];
}

export default ({ alpha, beta, lambda, x }: Params) => ({
  psi: x.map((xi) => (1 - lambda) / (1 + Math.exp(-beta * (xi - alpha)))),
});
