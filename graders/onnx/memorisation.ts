import { z } from "zod";

/**
 * The generators' memorisation check. A model can look good on every distribution measure by returning
 * real images (a lookup table of the training set); what it cannot fake is distance: each generated
 * sample's nearest reference image, by root-mean-square pixel difference, is measured, and a sample
 * closer than `minDistance` counts as a copy. Copies earn nothing: every part's credit is multiplied by
 * the share of samples that are not copies (up to `allowed` copies are forgiven, so a good model that
 * happens to land near a real image now and then keeps full marks).
 */
export const memorisationSchema = z.strictObject({
  /** Private .npy [M, ...image shape]: the reference images, float32/float64 in [0, 1] or uint8 0–255 (read as value / 255). */
  images: z.string().min(1),
  /** RMS pixel distance below which a sample is a copy; real 8×8 digits are that close to another only by chance. */
  minDistance: z.number().positive().max(1),
  /** Share of copies forgiven before any credit is lost. */
  allowed: z.number().min(0).max(0.5).default(0.02),
});
export type Memorisation = z.output<typeof memorisationSchema>;

/** Work (samples × images × pixels) one check may do: about a second of plain loops. */
export const MAX_MEMORISATION_WORK = 2e9;

export interface MemorisationResult {
  copies: number;
  /** Multiplies every part's credit: 1 with at most `allowed` copies, 0 when every sample is one. */
  factor: number;
  /** Median nearest-reference RMS distance, for the feedback. */
  medianDistance: number;
}

/**
 * Nearest reference image of each sample (RMS distance). The inner loop stops as soon as a reference
 * is farther than the best so far, which on real data skips most of the pixels.
 */
export function nearestDistances(samples: ArrayLike<number>, n: number, refs: ArrayLike<number>, m: number, pixels: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    const s = i * pixels;
    for (let j = 0; j < m; j++) {
      const r = j * pixels;
      let sum = 0;
      for (let p = 0; p < pixels && sum < best; p++) {
        const d = samples[s + p]! - refs[r + p]!;
        sum += d * d;
      }
      if (sum < best) best = sum;
    }
    out[i] = Math.sqrt(best / pixels);
  }
  return out;
}

export function checkMemorisation(distances: Float64Array, m: Pick<Memorisation, "minDistance" | "allowed">): MemorisationResult {
  const n = distances.length;
  let copies = 0;
  for (const d of distances) if (d < m.minDistance) copies++;
  const sorted = Float64Array.from(distances).sort();
  const medianDistance = n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  const factor = Math.min(1, (1 - copies / n) / (1 - m.allowed));
  return { copies, factor, medianDistance };
}
