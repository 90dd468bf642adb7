import { z } from "zod";
import { budgetField } from "./onnx/common.ts";
import { fixed } from "./format.ts";
import {
  batchRanges,
  batchSizeField,
  describeThresholds,
  progressCounter,
  publicSpec,
  thresholdScore,
  thresholdsSchema,
} from "./onnx/advanced-kit.ts";
import { decodeGrid, meanAveragePrecision, nms, type Detection, type GridLayout, type Labelled } from "./onnx/detection.ts";
import { groundTruth, renderScene, sampleScene, sceneSchema, type SceneSpec } from "./onnx/scenes.ts";
import { faultToResult, requireModel, runChecked, withSession } from "./onnx/session.ts";
import { modelAnswerSchema, type ModelAnswer, type TensorSpec } from "./onnx/types.ts";
import { rng } from "./random.ts";
import { graded, prepare, test } from "./result.ts";
import type { Grader } from "./types.ts";

/**
 * onnx-detector: a YOLO-style detector on seeded synthetic scenes (graders/onnx/scenes.ts), scored by
 * mAP at an IoU of 0.5 (VOC, all-point interpolation) after decoding and class-specific NMS.
 */

const name = z.string().min(1).max(200);

export const detectorConfigSchema = z
  .strictObject({
    input: z.strictObject({ name }),
    output: z.strictObject({ name }),
    scene: sceneSchema.prefault({}),
    /** S: the output has S × S cells. */
    grid: z.number().int().min(1).max(64),
    /** B: boxes per cell. */
    boxes: z.number().int().min(1).max(16).default(1),
    /** C: must equal the number of scene shapes (class i is scene.shapes[i]). */
    classes: z.number().int().min(1).max(3).optional(),
    scenes: z.number().int().min(1).max(5000).default(100),
    confThreshold: z.number().min(0).max(1).default(0.05),
    nmsIou: z.number().gt(0).max(1).default(0.5),
    /** IoU a detection needs with a ground-truth box to count (mAP@0.5 by default). */
    matchIou: z.number().gt(0).max(1).default(0.5),
    thresholds: thresholdsSchema,
    batchSize: batchSizeField.default(50),
    /** Fixes the scenes for every student (otherwise they follow the student's seed). */
    seed: z.string().min(1).optional(),
    budget: budgetField,
  })
  .superRefine((c, ctx) => {
    if (c.classes !== undefined && c.classes !== c.scene.shapes.length)
      ctx.addIssue({ code: "custom", path: ["classes"], message: `must equal the number of scene shapes (${c.scene.shapes.length})` });
  });
export type DetectorConfig = z.output<typeof detectorConfigSchema>;

const layout = (c: DetectorConfig): GridLayout => ({ grid: c.grid, boxes: c.boxes, classes: c.scene.shapes.length });
const perCell = (c: DetectorConfig): number => c.boxes * 5 + c.scene.shapes.length;
const specs = (c: DetectorConfig): { inputs: TensorSpec[]; outputs: TensorSpec[] } => ({
  inputs: [{ name: c.input.name, dtype: "float32", shape: ["N", 3, c.scene.size, c.scene.size] }],
  outputs: [{ name: c.output.name, dtype: "float32", shape: ["N", c.grid, c.grid, perCell(c)] }],
});

/** Scene i has its own stream, so changing `scenes` leaves the first ones as they were. */
export const sceneObjects = (spec: SceneSpec, seed: string, i: number) => sampleScene(spec, rng(seed, `detector/scene/${i}`));

export const detectorGrader: Grader<DetectorConfig, ModelAnswer> = {
  type: "onnx-detector",
  version: "1.0.0",
  configSchema: detectorConfigSchema,
  answerSchema: modelAnswerSchema,

  privateFiles: () => [],

  modelSpec: (c) => ({ ...specs(c), budget: c.budget }),

  answerFormat(c) {
    const { inputs, outputs } = specs(c);
    return {
      inputs: inputs.map(publicSpec),
      outputs: outputs.map(publicSpec),
      ...c.budget,
      scene: c.scene,
      classes: c.scene.shapes,
      layout:
        `Output [N, ${c.grid}, ${c.grid}, ${perCell(c)}]: cell [n, i, j] is row i (y) and column j (x) of the grid; it holds ` +
        `${c.boxes} × (x, y, w, h, conf) then ${c.scene.shapes.length} class probabilities. x, y ∈ [0, 1] place the box centre ` +
        "inside the cell, w and h are fractions of the image size; apply sigmoid/softmax inside the model. Each box takes the " +
        "cell's most probable class with score conf × p(class).",
      evaluation: `mAP@${c.matchIou} (VOC, all-point interpolation) over ${c.scenes} generated scenes, after dropping scores below ${c.confThreshold} and class-wise NMS at IoU ${c.nmsIou}.`,
      thresholds: c.thresholds,
    };
  },

  async grade(input) {
    const prepared = prepare(detectorGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config: c } = prepared;
    const { points } = input;
    const { model, runtime } = requireModel(input);

    const inputSeed = c.seed ?? input.seed;
    const { size, shapes } = c.scene;
    const objects = Array.from({ length: c.scenes }, (_, i) => sceneObjects(c.scene, inputSeed, i));
    const truths: Labelled[][] = objects.map((o) => groundTruth(c.scene, o));
    const pixels = 3 * size * size;
    const cells = c.grid * c.grid * perCell(c);
    const ranges = batchRanges(c.scenes, c.batchSize);
    const tick = progressCounter(ranges.length, input.onProgress);
    const { outputs } = specs(c);

    const detections: Detection[][] = [];
    let provider: string;
    try {
      provider = await withSession(
        runtime,
        model,
        "submission",
        async (session) => {
          for (const [start, end] of ranges) {
            const images = new Float32Array((end - start) * pixels);
            for (let i = start; i < end; i++) renderScene(c.scene, objects[i]!, images, (i - start) * pixels);
            const feeds = { [c.input.name]: { dtype: "float32" as const, dims: [end - start, 3, size, size], data: images } };
            const grid = (await runChecked(session, feeds, outputs, { N: end - start }))[c.output.name]!.data as Float32Array;
            for (let i = 0; i < end - start; i++) detections.push(nms(decodeGrid(grid, i * cells, layout(c), c.confThreshold), c.nmsIou));
            tick();
          }
          return session.executionProvider;
        },
        input.signal,
      );
    } catch (err) {
      return faultToResult(points, err);
    }

    const { map, perClass } = meanAveragePrecision(detections, truths, shapes.length, c.matchIou);
    const fraction = thresholdScore(map, c.thresholds);
    const scale = describeThresholds(c.thresholds);
    const found = detections.reduce((s, d) => s + d.length, 0);
    const present = truths.reduce((s, t) => s + t.length, 0);
    const perClassText = shapes.map((s, k) => `${s} ${perClass[k] === null ? "n/a" : fixed(perClass[k]!)}`).join(", ");
    const mapMsg = `mAP@${c.matchIou} ${fixed(map)} over ${c.scenes} scenes.`;
    return {
      ...graded(points, fraction * points, `${mapMsg} Score: ${Math.round(fraction * 100)}% (${scale}).`, [
        test(`mAP@${c.matchIou}`, fraction * points, points, `${mapMsg} Scale: ${scale}.`),
        test("Average precision per class", 0, 0, `${perClassText} (for information)`),
        test("Detections", 0, 0, `${found} detections after thresholding and NMS, for ${present} objects (for information).`),
      ]),
      provenance: { executionProvider: provider, ortVersion: runtime.ortVersion, inputSeed },
    };
  },
};
