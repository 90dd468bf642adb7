/** Right floor and ceiling, joined by a straight line: no sigmoid, far too shallow at α. */
interface Params {
  lambda: number;
  guess: number;
  x: number[];
}

export default ({ lambda, guess, x }: Params) => {
  const [lo, hi] = [x[0]!, x[x.length - 1]!];
  return { psi: x.map((xi) => guess + ((1 - guess - lambda) * (xi - lo)) / (hi - lo)) };
};
