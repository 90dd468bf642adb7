import { describe, expect, it } from "vitest";
import { detectorGrader, sceneObjects } from "../../graders/onnx-detector.ts";
import {
  averagePrecision,
  decodeGrid,
  iou,
  meanAveragePrecision,
  nms,
  type Detection,
  type Labelled,
} from "../../graders/onnx/detection.ts";
import { readNpy } from "../../graders/onnx/npy.ts";
import { groundTruth, renderScene, sceneSchema, type SceneObject } from "../../graders/onnx/scenes.ts";
import { fixtureFile, gradeModel, loadProblem, measured, progressRecorder } from "../helpers/model-grading.ts";

const problem = loadProblem("onnx-advanced", "yolo-shapes");
const model = (name: string) => fixtureFile(`advanced/detector/${name}.onnx`);
const box = (cls: number, x1: number, y1: number, x2: number, y2: number, score = 1): Detection => ({ cls, x1, y1, x2, y2, score });

describe("decoding, NMS and mAP", () => {
  it("computes IoU", () => {
    expect(iou(box(0, 0, 0, 2, 2), box(0, 1, 1, 3, 3))).toBeCloseTo(1 / 7, 12);
    expect(iou(box(0, 0, 0, 1, 1), box(0, 1, 0, 2, 1))).toBe(0);
  });

  it("decodes cell-relative centres and image-relative sizes", () => {
    // S = 2, B = 1, C = 2: per cell x, y, w, h, conf, p0, p1; only row 1, column 0 is confident.
    const grid = new Float32Array(2 * 2 * 7);
    grid.set([0.5, 0.5, 0.4, 0.2, 0.9, 0.2, 0.8], (1 * 2 + 0) * 7);
    grid.set([0.5, 0.5, 0.4, 0.2, 0.01, 0.5, 0.5], (0 * 2 + 1) * 7);
    const [d, ...rest] = decodeGrid(grid, 0, { grid: 2, boxes: 1, classes: 2 }, 0.05);
    expect(rest).toEqual([]);
    expect(d!.cls).toBe(1);
    expect(d!.score).toBeCloseTo(0.72, 6);
    for (const [k, v] of Object.entries({ x1: 0.05, y1: 0.65, x2: 0.45, y2: 0.85 })) expect(d![k as "x1"]).toBeCloseTo(v, 6);
  });

  it("suppresses overlapping boxes of the same class only", () => {
    const kept = nms([box(0, 0, 0, 1, 1, 0.6), box(0, 0.05, 0, 1, 1, 0.9), box(1, 0, 0, 1, 1, 0.5), box(0, 2, 2, 3, 3, 0.1)], 0.5);
    expect(kept.map((d) => [d.cls, d.score])).toEqual([
      [0, 0.9],
      [1, 0.5],
      [0, 0.1],
    ]);
  });

  const truths: Labelled[][] = [[box(0, 0, 0, 0.2, 0.2)], [box(0, 0.5, 0.5, 0.7, 0.7), box(1, 0.1, 0.1, 0.3, 0.3)]];

  it("gives mAP 1 to perfect predictions", () => {
    expect(
      meanAveragePrecision(
        truths.map((t) => t.map((g) => ({ ...g, score: 0.9 }))),
        truths,
        2,
      ),
    ).toEqual({ map: 1, perClass: [1, 1] });
  });

  it("gives AP 2/3 when a false positive ranks first (all-point interpolation)", () => {
    // Class 0 ranked: FP (0.9), TP (0.8), TP (0.7) → precision 0, 1/2, 2/3 at recall 0, 1/2, 1 → AP 2/3.
    const dets = [[box(0, 0, 0, 0.2, 0.2, 0.8)], [box(0, 0.8, 0.8, 1, 1, 0.9), box(0, 0.5, 0.5, 0.7, 0.7, 0.7)]];
    expect(averagePrecision(dets, truths, 0)).toBeCloseTo(2 / 3, 12);
    // A duplicate of a matched box is a false positive; a missed class scores 0; an absent class is left out.
    expect(averagePrecision([[box(0, 0, 0, 0.2, 0.2, 0.9), box(0, 0, 0, 0.2, 0.2, 0.8)], []], truths, 0)).toBeCloseTo(0.5, 12);
    expect(meanAveragePrecision(dets, truths, 3)).toEqual({
      map: expect.closeTo(1 / 3, 12),
      perClass: [expect.closeTo(2 / 3, 12), 0, null],
    });
  });

  it("decodes and scores a grid that encodes the ground truth as mAP 1", () => {
    // B = 2 and objects of at least 8 px: no grid cell ever holds more objects than boxes.
    const spec = sceneSchema.parse({ minObjects: 2, maxObjects: 5, minSize: 8 });
    const S = 4;
    const per = 2 * 5 + 3;
    const scenes = Array.from({ length: 20 }, (_, i) => sceneObjects(spec, "oracle", i));
    const dets = scenes.map((objects) => {
      const grid = new Float32Array(S * S * per);
      const used = new Map<number, number>();
      for (const g of groundTruth(spec, objects)) {
        const [cx, cy] = [((g.x1 + g.x2) / 2) * S, ((g.y1 + g.y2) / 2) * S];
        const cell = Math.floor(cy) * S + Math.floor(cx);
        const b = used.get(cell) ?? 0;
        used.set(cell, b + 1);
        grid.set([cx - Math.floor(cx), cy - Math.floor(cy), g.x2 - g.x1, g.y2 - g.y1, 1], cell * per + b * 5);
        grid[cell * per + 10 + g.cls] = 1;
      }
      return nms(decodeGrid(grid, 0, { grid: S, boxes: 2, classes: 3 }, 0.05), 0.5);
    });
    const truths = scenes.map((o) => groundTruth(spec, o));
    expect(meanAveragePrecision(dets, truths, 3).map).toBeCloseTo(1, 12);
  });
});

describe("synthetic scenes", () => {
  it("render exactly as scripts/fixtures/detector.py renders the same objects", () => {
    const check = JSON.parse(new TextDecoder().decode(fixtureFile("advanced/detector/scenes.json"))) as Record<
      string,
      { spec: unknown; scenes: SceneObject[][] }
    >;
    for (const [size, { spec: raw, scenes }] of Object.entries(check)) {
      const spec = sceneSchema.parse(raw);
      const expected = readNpy(fixtureFile(`advanced/detector/scenes-${size}.npy`)) as { dims: number[]; data: Uint8Array };
      const pixels = 3 * spec.size * spec.size;
      expect(expected.dims).toEqual([scenes.length, 3, spec.size, spec.size]);
      scenes.forEach((objects, i) => {
        const image = new Float32Array(pixels);
        renderScene(spec, objects, image);
        expect(Array.from(image)).toEqual(Array.from(expected.data.subarray(i * pixels, (i + 1) * pixels)));
      });
    }
  });

  it("place the configured number of non-overlapping objects inside the image", () => {
    const spec = sceneSchema.parse({ size: 32, minObjects: 1, maxObjects: 4, minSize: 6, maxSize: 14 });
    for (let i = 0; i < 200; i++) {
      const objects = sceneObjects(spec, "layout", i);
      expect(objects.length).toBeGreaterThanOrEqual(1);
      expect(objects.length).toBeLessThanOrEqual(4);
      for (const [k, o] of objects.entries()) {
        expect(o.x0 + o.s).toBeLessThanOrEqual(32);
        expect(o.s).toBeGreaterThanOrEqual(6);
        for (const p of objects.slice(0, k)) expect(iou(groundTruth(spec, [o])[0]!, groundTruth(spec, [p])[0]!)).toBe(0);
      }
    }
    expect(sceneObjects(spec, "layout", 7)).toEqual(sceneObjects(spec, "layout", 7));
    expect(sceneObjects(spec, "layout", 7)).not.toEqual(sceneObjects(spec, "other", 7));
  });
});

describe("onnx-detector grader", () => {
  it("gives full marks to a trained detector and reports progress and provenance", async () => {
    const progress = progressRecorder();
    const r = await gradeModel(detectorGrader, problem, model("detector"), { onProgress: progress.onProgress });
    expect(r).toMatchObject({ status: "graded", score: 10, provenance: { executionProvider: "cpu", inputSeed: "student-1" } });
    expect(measured(r, "mAP@0\\.5")).toBeGreaterThan(0.9);
    expect(r.feedback.tests.map((t) => t.name)).toEqual(["mAP@0.5", "Average precision per class", "Detections"]);
    expect(r.feedback.tests[1]!.message).toMatch(/square \d\.\d+, circle \d\.\d+, triangle \d\.\d+/);
    progress.check();
  });

  it("gives half marks to an undertrained detector (borderline)", async () => {
    const r = await gradeModel(detectorGrader, problem, model("undertrained"));
    const map = measured(r, "mAP@0\\.5");
    expect(map).toBeGreaterThan(0.25);
    expect(map).toBeLessThan(0.5);
    expect(r.score).toBe(5);
  });

  it("gives nothing to a detector whose grid rows and columns are swapped", async () => {
    const r = await gradeModel(detectorGrader, problem, model("transposed"));
    expect(measured(r, "mAP@0\\.5")).toBeLessThan(0.25);
    expect(r).toMatchObject({ status: "graded", score: 0 });
  });

  it("rejects a channels-first output, naming both shapes", async () => {
    const r = await gradeModel(detectorGrader, problem, model("channels-first"));
    expect(r).toMatchObject({ status: "rejected", score: 0 });
    expect(r.feedback.summary).toMatch(/Output 'grid' has shape \[N, 8, 4, 4\]; expected \[N, 4, 4, 8\]/);
  });

  it("is deterministic per seed, and the scenes follow the seed", async () => {
    const a = await gradeModel(detectorGrader, problem, model("undertrained"), { seed: "alice" });
    expect(await gradeModel(detectorGrader, problem, model("undertrained"), { seed: "alice" })).toEqual(a);
    const b = await gradeModel(detectorGrader, problem, model("undertrained"), { seed: "bob" });
    expect(b.feedback.summary).not.toEqual(a.feedback.summary);
  });

  it("publishes signature, layout and scale", () => {
    const config = detectorGrader.configSchema.parse(problem.config);
    expect(detectorGrader.answerFormat(config, "s")).toMatchObject({
      inputs: [{ name: "image", dtype: "float32", shape: ["N", 3, 32, 32] }],
      outputs: [{ name: "grid", dtype: "float32", shape: ["N", 4, 4, 8] }],
      maxBytes: 4_000_000,
      maxNodes: 2000,
      classes: ["square", "circle", "triangle"],
      thresholds: [
        { min: 0.25, score: 0.5 },
        { min: 0.5, score: 1 },
      ],
    });
    expect(detectorGrader.privateFiles!(config)).toEqual([]);
  });

  it("checks its config", () => {
    const ok = (over: Record<string, unknown>) => detectorGrader.configSchema.safeParse({ ...problem.config, ...over }).success;
    expect(ok({})).toBe(true);
    expect(ok({ classes: 2 })).toBe(false);
    expect(ok({ scene: { size: 48 } })).toBe(false);
    expect(ok({ scene: { minSize: 10, maxSize: 8 } })).toBe(false);
    expect(ok({ scene: { shapes: ["square", "square"] }, classes: undefined })).toBe(false);
  });
});
