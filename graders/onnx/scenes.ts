import { z } from "zod";
import type { Rng } from "../random.ts";
import type { Labelled } from "./detection.ts";

/**
 * Synthetic detection scenes: filled shapes of one colour per shape on black. This file is the
 * specification; scripts/fixtures/detector.py mirrors it exactly for training data (with its own
 * random generator, and the same distributions).
 *
 * - An image is float32 [3, size, size] (channels R, G, B; row y, column x), all 0 to start.
 * - n = int(minObjects, maxObjects) objects are attempted, in order. Each attempt draws, in this
 *   order: class = int(0, shapes.length − 1) (the index into `shapes`), side s = int(minSize,
 *   maxSize), x0 = int(0, size − s), y0 = int(0, size − s) (int bounds are inclusive). The object
 *   takes the square box [x0, x0 + s) × [y0, y0 + s) of pixels, which must not share a pixel with
 *   an earlier object's box; otherwise the attempt is redrawn, at most 50 times per object, and
 *   then the object is dropped (so crowded scenes may hold fewer than n objects, never 0).
 * - Pixel (x, y) has centre (x + ½, y + ½) and belongs to the shape when that centre does:
 *     square:   every pixel of the box;
 *     circle:   (px − cx)² + (py − cy)² ≤ (s/2)², centre (cx, cy) = (x0 + s/2, y0 + s/2);
 *     triangle: pointing up, apex (x0 + s/2, y0), base from (x0, y0 + s) to (x0 + s, y0 + s):
 *               |px − (x0 + s/2)| ≤ (py − y0) / 2.
 *   All these numbers are multiples of ¼, so float32 and float64 agree exactly.
 * - Colours by shape: square (1, 0, 0), circle (0, 1, 0), triangle (0, 0, 1); every channel of a
 *   shape's pixels is set to its colour.
 * - The ground-truth box is the nominal box [x0, y0, x0 + s, y0 + s] / size (image fractions), for
 *   every shape, with the shape's class.
 */

export const SHAPES = ["square", "circle", "triangle"] as const;
export type ShapeName = (typeof SHAPES)[number];
export const COLOURS: Record<ShapeName, [number, number, number]> = { square: [1, 0, 0], circle: [0, 1, 0], triangle: [0, 0, 1] };
const MAX_ATTEMPTS = 50;

export const sceneSchema = z
  .strictObject({
    size: z.union([z.literal(32), z.literal(64)]).default(32),
    shapes: z
      .array(z.enum(SHAPES))
      .min(1)
      .default([...SHAPES])
      .refine((s) => new Set(s).size === s.length, { message: "each shape may be listed once" }),
    minObjects: z.number().int().min(1).default(1),
    maxObjects: z.number().int().min(1).max(20).default(3),
    minSize: z.number().int().min(3).default(6),
    maxSize: z.number().int().min(3).default(14),
  })
  .superRefine((s, ctx) => {
    if (s.maxObjects < s.minObjects) ctx.addIssue({ code: "custom", path: ["maxObjects"], message: "must be at least minObjects" });
    if (s.maxSize < s.minSize) ctx.addIssue({ code: "custom", path: ["maxSize"], message: "must be at least minSize" });
    if (s.maxSize > s.size) ctx.addIssue({ code: "custom", path: ["maxSize"], message: "must fit in the image" });
  });
export type SceneSpec = z.output<typeof sceneSchema>;

export interface SceneObject {
  cls: number;
  x0: number;
  y0: number;
  s: number;
}

export function sampleScene(spec: SceneSpec, r: Rng): SceneObject[] {
  const n = r.int(spec.minObjects, spec.maxObjects);
  const objects: SceneObject[] = [];
  for (let k = 0; k < n; k++) {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const cls = r.int(0, spec.shapes.length - 1);
      const s = r.int(spec.minSize, spec.maxSize);
      const x0 = r.int(0, spec.size - s);
      const y0 = r.int(0, spec.size - s);
      const overlaps = objects.some((o) => x0 < o.x0 + o.s && o.x0 < x0 + s && y0 < o.y0 + o.s && o.y0 < y0 + s);
      if (!overlaps) {
        objects.push({ cls, x0, y0, s });
        break;
      }
    }
  }
  return objects;
}

function inside(shape: ShapeName, o: SceneObject, px: number, py: number): boolean {
  if (shape === "square") return true;
  const cx = o.x0 + o.s / 2;
  if (shape === "circle") {
    const cy = o.y0 + o.s / 2;
    return (px - cx) ** 2 + (py - cy) ** 2 <= (o.s / 2) ** 2;
  }
  return Math.abs(px - cx) <= (py - o.y0) / 2;
}

/** Draws the objects into `out` at `offset` (3 × size × size floats, expected to be zero). */
export function renderScene(spec: SceneSpec, objects: readonly SceneObject[], out: Float32Array, offset = 0): void {
  const { size } = spec;
  for (const o of objects) {
    const shape = spec.shapes[o.cls]!;
    const colour = COLOURS[shape];
    for (let y = o.y0; y < o.y0 + o.s; y++)
      for (let x = o.x0; x < o.x0 + o.s; x++) {
        if (!inside(shape, o, x + 0.5, y + 0.5)) continue;
        for (let ch = 0; ch < 3; ch++) out[offset + (ch * size + y) * size + x] = colour[ch]!;
      }
  }
}

export function groundTruth(spec: SceneSpec, objects: readonly SceneObject[]): Labelled[] {
  return objects.map((o) => ({
    cls: o.cls,
    x1: o.x0 / spec.size,
    y1: o.y0 / spec.size,
    x2: (o.x0 + o.s) / spec.size,
    y2: (o.y0 + o.s) / spec.size,
  }));
}
