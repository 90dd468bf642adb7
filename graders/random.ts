import seedrandom from "seedrandom";

/** A deterministic random stream. Never use Math.random in a grader: grades must be reproducible. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  uniform(min: number, max: number): number;
  /** Gaussian (Box–Muller). */
  normal(mean?: number, std?: number): number;
  /** Integer uniform in [min, max], both ends included. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  /** A shuffled copy (Fisher–Yates); the input is left alone. */
  shuffle<T>(items: readonly T[]): T[];
}

/**
 * A stream for `seed`, independent per `label`: every use of randomness takes its own
 * label (e.g. "params/A", "expression/points"), so adding a new use never shifts the
 * values an existing one produced for the same student. The key is JSON so that
 * ("ab", "c") and ("a", "bc") cannot collide.
 */
export function rng(seed: string, label = ""): Rng {
  const prng = seedrandom(JSON.stringify([seed, label]));
  const next = (): number => prng();
  const int = (min: number, max: number): number => {
    if (!Number.isInteger(min) || !Number.isInteger(max) || max < min) {
      throw new RangeError(`int(${min}, ${max}): need integers with min <= max`);
    }
    return min + Math.floor(next() * (max - min + 1));
  };
  return {
    next,
    uniform: (min, max) => min + (max - min) * next(),
    normal: (mean = 0, std = 1) => {
      // 1 - u keeps the logarithm's argument in (0, 1].
      const u = 1 - next();
      const v = next();
      return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    int,
    pick: (items) => {
      if (items.length === 0) throw new RangeError("pick() from an empty list");
      return items[int(0, items.length - 1)]!;
    },
    shuffle: (items) => {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(0, i);
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    },
  };
}
