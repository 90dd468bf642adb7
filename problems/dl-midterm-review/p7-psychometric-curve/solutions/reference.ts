/** ψ(x) = γ + (1 − γ − λ) F(x): the floor at the guess rate, the ceiling at 1 − λ. */
interface Params {
  alpha: number;
  beta: number;
  lambda: number;
  guess: number;
  x: number[];
}

export default ({ alpha, beta, lambda, guess, x }: Params) => ({
  psi: x.map((xi) => guess + (1 - guess - lambda) / (1 + Math.exp(-beta * (xi - alpha)))),
});
