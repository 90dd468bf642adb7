/** How numbers read in feedback and statements: one place, so that every grader writes them the same way. */

/** Rounds away binary noise (0.1 * 3 → 0.3) and keeps `digits` significant digits. */
export const tidy = (x: number, digits = 12): number => Number.parseFloat(x.toPrecision(digits));

/** Fixed decimals (3 by default: more would suggest a precision the measurement lacks), never "-0.000". */
export function fixed(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  const text = x.toFixed(digits);
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
}

/** Two significant digits, enough to tell a near miss from a wrong formula: 0.13, 3.0e-5. */
export const sig2 = (x: number): string =>
  x === 0 ? "0" : Math.abs(x) >= 1e-3 && Math.abs(x) < 1e5 ? Number(x.toPrecision(2)).toString() : x.toExponential(1);
