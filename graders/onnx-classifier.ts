import { z } from "zod";
import { budgetField, toFloat64 } from "./onnx/common.ts";
import { graded, prepare, problemError, test } from "./result.ts";
import type { GradeInput, Grader } from "./types.ts";
import { fileField, gradeModel, modelFormat, privateFile } from "./onnx/basic-model.ts";
import { argmaxRows, classMetrics, topConfusions } from "./onnx/metrics-basic.ts";
import { readNpy } from "./onnx/npy.ts";
import { runBatches } from "./onnx/session.ts";
import { dimSchema, modelAnswerSchema, type ModelAnswer, type ModelSpec } from "./onnx/types.ts";

/**
 * onnx-classifier: the student's classifier runs on a private labelled test set; accuracy or macro-F1
 * against thresholds gives the score. The output may be logits or probabilities: only its argmax counts.
 */

export const onnxClassifierConfigSchema = z
  .strictObject({
    /** x: float32 [M, ...] (the input's shape after the batch dim); y: integer class indices [M]. */
    data: z.strictObject({ x: fileField, y: fileField }),
    input: z.strictObject({ name: z.string().min(1).max(200).default("x"), shape: z.array(dimSchema).min(1).max(8) }),
    output: z.strictObject({ name: z.string().min(1).max(200).default("logits") }).prefault({}),
    /** The number of classes, or their names (index i is class i). */
    classes: z.union([z.number().int().min(2).max(10_000), z.array(z.string().min(1)).min(2).max(10_000)]),
    batchSize: z.number().int().min(1).max(65536).default(256),
    metric: z.enum(["accuracy", "macro-f1"]).default("accuracy"),
    /** Share of the points at the highest `min` the metric reaches; none below every threshold. */
    thresholds: z
      .array(z.strictObject({ min: z.number().min(0).max(1), score: z.number().min(0).max(1) }))
      .min(1)
      .max(20),
    budget: budgetField,
  })
  .superRefine((c, ctx) => {
    const [batch, ...rest] = c.input.shape;
    if (typeof batch !== "string" || rest.some((d) => typeof d !== "number"))
      ctx.addIssue({
        code: "custom",
        path: ["input", "shape"],
        message: "must be a named batch dim, then fixed sizes (e.g. [N, 1, 8, 8])",
      });
  });
export type OnnxClassifierConfig = z.output<typeof onnxClassifierConfigSchema>;

const classNames = (c: OnnxClassifierConfig): string[] =>
  typeof c.classes === "number" ? Array.from({ length: c.classes }, (_, i) => String(i)) : c.classes;

function modelSpec(config: OnnxClassifierConfig): ModelSpec {
  const batch = config.input.shape[0]!;
  return {
    inputs: [{ name: config.input.name, dtype: "float32", shape: config.input.shape }],
    outputs: [{ name: config.output.name, dtype: "float32", shape: [batch, classNames(config).length] }],
    budget: config.budget,
  };
}

class DataFault extends Error {}

/** The test set: x as float32 with per-sample shape checked, y as class indices in range. */
function loadData(input: GradeInput<unknown, unknown>, config: OnnxClassifierConfig) {
  const read = (file: string) => {
    const bytes = privateFile(input, file);
    if (!bytes) throw new DataFault(`${file} is missing from the problem folder`);
    try {
      return readNpy(bytes, file, { view: true }); // read only: x is sent in batches, y converted
    } catch (e) {
      throw new DataFault((e as Error).message);
    }
  };
  const x = read(config.data.x);
  const y = read(config.data.y);
  const sample = config.input.shape.slice(1) as number[];
  const m = x.dims[0] ?? 0;
  if (
    !(x.dtype === "float32" || x.dtype === "float64") ||
    x.dims.length !== sample.length + 1 ||
    sample.some((d, i) => x.dims[i + 1] !== d)
  )
    throw new DataFault(`${config.data.x} is ${x.dtype} [${x.dims.join(", ")}]; expected float32 [M, ${sample.join(", ")}]`);
  if (y.dims.length !== 1 || y.dims[0] !== m || y.dtype === "float32" || y.dtype === "float64")
    throw new DataFault(`${config.data.y} is ${y.dtype} [${y.dims.join(", ")}]; expected int64 [${m}]`);
  const labels = toFloat64(y);
  const classes = classNames(config).length;
  if (labels.some((v) => !Number.isInteger(v) || v < 0 || v >= classes))
    throw new DataFault(`${config.data.y} has labels outside 0..${classes - 1}`);
  if (m === 0) throw new DataFault(`${config.data.x} is empty`);
  return {
    m,
    per: sample.reduce((a, b) => a * b, 1),
    x: x.dtype === "float32" ? (x.data as Float32Array) : Float32Array.from(x.data as Float64Array),
    labels,
  };
}

const f4 = (v: number): string => v.toFixed(4);

export const onnxClassifierGrader: Grader<OnnxClassifierConfig, ModelAnswer> = {
  type: "onnx-classifier",
  version: "1.0.0",
  configSchema: onnxClassifierConfigSchema,
  answerSchema: modelAnswerSchema,
  modelSpec,

  answerFormat(config) {
    return modelFormat(modelSpec(config), { classes: config.classes, metric: config.metric, thresholds: config.thresholds });
  },

  privateFiles: (config) => [config.data.x, config.data.y],

  async grade(input) {
    const prepared = prepare(onnxClassifierGrader, input);
    if (!prepared.ok) return prepared.result;
    const { config } = prepared;
    const { points } = input;
    let data: ReturnType<typeof loadData>;
    try {
      data = loadData(input, config);
    } catch (e) {
      if (e instanceof DataFault) return problemError(points, `The problem's test set is unusable: ${e.message}.`);
      throw e;
    }
    const { m, per, x, labels } = data;
    const names = classNames(config);
    const spec = modelSpec(config);
    const batchDim = String(config.input.shape[0]);

    // No randomness here (a fixed test set); the student's seed is recorded as for every model grader.
    return gradeModel(input, spec, input.seed, async (session) => {
      const predicted = new Int32Array(m);
      const batches = Math.ceil(m / config.batchSize);
      const rows = (b: number) => [b * config.batchSize, Math.min(config.batchSize, m - b * config.batchSize)] as const;
      const batch = (b: number) => {
        const [start, n] = rows(b);
        const dims = [n, ...(config.input.shape.slice(1) as number[])];
        // A view, not a copy: the sandbox writes just these rows for the child (so does v8's serializer).
        const feeds = { [config.input.name]: { dtype: "float32" as const, dims, data: x.subarray(start * per, (start + n) * per) } };
        return { feeds, free: { [batchDim]: n } };
      };
      await runBatches(session, batches, batch, spec.outputs, (b, out) => {
        const [start, n] = rows(b);
        predicted.set(argmaxRows(out[config.output.name]!.data as Float32Array, n, names.length), start);
        input.onProgress?.(b + 1, batches);
      });

      const r = classMetrics(labels, predicted, names.length);
      const value = config.metric === "accuracy" ? r.accuracy : r.macroF1;
      // 1e-12 of slack: 405/450 must reach a 0.9 threshold whatever the division rounds to.
      const reached = [...config.thresholds].sort((a, b) => b.min - a.min).find((t) => value + 1e-12 >= t.min);
      const fraction = reached?.score ?? 0;
      const lowest = Math.min(...config.thresholds.map((t) => t.min));
      const verdict = reached
        ? `reached the ≥ ${reached.min} threshold: ${Math.round(fraction * 100)}% of the points.`
        : `below every threshold (the lowest is ${lowest}): no points.`;

      const metricTest = (name: string, key: OnnxClassifierConfig["metric"], v: number, extra: string) =>
        key === config.metric
          ? test(name, fraction * points, points, `${name} ${f4(v)}${extra}; ${verdict}`)
          : test(name, 0, 0, `${name} ${f4(v)}${extra} (informational).`);
      const correct = r.confusion.reduce((s, row, t) => s + row[t]!, 0);
      const width = Math.max(5, ...names.map((n) => n.length));
      const recallTable = [
        `${"class".padEnd(width)}  recall`,
        ...names.map((n, t) => `${n.padEnd(width)}  ${Number.isNaN(r.recall[t]) ? "-" : f4(r.recall[t]!)}`),
      ];
      const confusionRows = r.confusion.map((row, t) => `${names[t]}: ${row.join(" ")}`);
      const top = topConfusions(r.confusion, names);
      const tests = [
        metricTest("Accuracy", "accuracy", r.accuracy, ` (${correct} of ${m})`),
        metricTest("Macro-F1", "macro-f1", r.macroF1, ""),
        test("Per-class recall", 0, 0, recallTable.join("\n")),
        {
          ...test(
            "Confusions (staff)",
            0,
            0,
            `Most frequent: ${top.join(", ") || "none"}.\nConfusion matrix (rows true, columns predicted):\n${confusionRows.join("\n")}`,
          ),
          visibility: "hidden" as const,
        },
      ];
      const summary = `${config.metric === "accuracy" ? "Accuracy" : "Macro-F1"} ${f4(value)} on the test set: ${verdict}`;
      return graded(points, fraction * points, summary, tests);
    });
  },
};
