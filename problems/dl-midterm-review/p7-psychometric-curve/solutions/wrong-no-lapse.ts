/** Lapses forgotten: the curve climbs all the way to 1. */
interface Params {
  alpha: number;
  beta: number;
  guess: number;
  x: number[];
}

export default ({ alpha, beta, guess, x }: Params) => ({
  psi: x.map((xi) => guess + (1 - guess) / (1 + Math.exp(-beta * (xi - alpha)))),
});
