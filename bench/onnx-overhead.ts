/**
 * What grading an ONNX model through the platform costs over bare onnxruntime-node, measured in one run:
 *   1. a small CNN on 1,000 inputs: platform (preflight + sandboxed child + onnx-classifier grader) vs bare
 *      in-process onnxruntime-node, same model, inputs, batch size and threads; target ratio <= 1.15
 *   2. a tiny model: fixed overhead per submission (platform − bare, both including session creation);
 *      target <= 15 ms
 * Prints a table and writes JSON to bench/results/. Medians over repeats: this machine is shared and noisy.
 *
 *   npm run bench:onnx [-- --repeats 15]
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { onnxClassifierGrader } from "../graders/onnx-classifier.ts";
import { preflight } from "../src/grading/onnx/preflight.ts";
import { createSandboxRuntime } from "../src/grading/onnx/runtime.ts";

const { values } = parseArgs({ options: { repeats: { type: "string", default: "11" } } });
const REPEATS = Number(values.repeats);
const THREADS = { intraOpNumThreads: 1, interOpNumThreads: 1 };
const BATCH = 250;

/** A deterministic float stream, so both sides see the same inputs in every run. */
function inputs(count: number, perSample: number): Float32Array {
  const out = new Float32Array(count * perSample);
  let s = 12345;
  for (let i = 0; i < out.length; i++) out[i] = ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) as number;
  return out;
}

/** numpy's .npy v1 header + data, as the grader's private files expect. */
function npy(data: Float32Array | BigInt64Array, shape: number[]): Uint8Array {
  const descr = data instanceof Float32Array ? "<f4" : "<i8";
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  header = header.padEnd(Math.ceil((header.length + 11) / 64) * 64 - 11, " ") + "\n";
  const head = new Uint8Array([0x93, ...Buffer.from("NUMPY"), 1, 0, header.length & 0xff, header.length >> 8, ...Buffer.from(header)]);
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function bare(model: Uint8Array, x: Float32Array, sample: number[], count: number): Promise<number> {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(model, { executionProviders: ["cpu"], ...THREADS });
  const per = sample.reduce((a, b) => a * b, 1);
  for (let i = 0; i < count; i += BATCH) {
    const n = Math.min(BATCH, count - i);
    await session.run({ x: new ort.Tensor("float32", x.subarray(i * per, (i + n) * per), [n, ...sample]) });
  }
  await session.release();
  return performance.now() - t0;
}

async function main() {
  const runtime = createSandboxRuntime({ providers: ["cpu"], size: 2, ...THREADS, logger: { warn: () => undefined } });
  const cases = [
    { name: "small CNN, 1,000 inputs", file: "bench/models/small_cnn.onnx", sample: [1, 28, 28], classes: 10, count: 1000 },
    { name: "tiny model, 8 inputs", file: "bench/models/tiny.onnx", sample: [4], classes: 4, count: 8 },
  ];
  const rows = [];
  for (const c of cases) {
    const model = new Uint8Array(await readFile(c.file));
    const per = c.sample.reduce((a, b) => a * b, 1);
    const x = inputs(c.count, per);
    const y = BigInt64Array.from({ length: c.count }, (_, i) => BigInt(i % c.classes));
    const config = onnxClassifierGrader.configSchema.parse({
      data: { x: "x.npy", y: "y.npy" },
      input: { name: "x", shape: ["N", ...c.sample] },
      output: { name: "logits" },
      classes: c.classes,
      batchSize: BATCH,
      thresholds: [{ min: 0, score: 1 }],
    });
    const privateData = new Map([
      ["x.npy", npy(x, [c.count, ...c.sample])],
      ["y.npy", npy(y, [c.count])],
    ]);
    const answer = { model: { sha256: "0".repeat(64), size: model.byteLength } };
    const platform = async () => {
      const t0 = performance.now();
      const check = preflight(model, onnxClassifierGrader.modelSpec!(config));
      if (!check.ok) throw new Error(check.message);
      const r = await onnxClassifierGrader.grade({ config, privateData, answer, seed: "bench", points: 1, model, runtime });
      if (r.status !== "graded") throw new Error(r.feedback.summary);
      return performance.now() - t0;
    };
    await bare(model, x, c.sample, c.count); // warm both sides: first loads pay for page faults
    await platform();
    const b: number[] = [];
    const p: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      b.push(await bare(model, x, c.sample, c.count));
      p.push(await platform());
    }
    rows.push({ case: c.name, bareMs: median(b), platformMs: median(p), ratio: median(p) / median(b), overheadMs: median(p) - median(b) });
  }
  await runtime.close();

  const [cnn, tiny] = rows as [(typeof rows)[0], (typeof rows)[0]];
  console.log(`ONNX grading overhead, median of ${REPEATS} runs (1 intra-op thread, batch ${BATCH}, CPU provider)`);
  console.table(
    rows.map((r) => ({
      case: r.case,
      "bare ms": r.bareMs.toFixed(2),
      "platform ms": r.platformMs.toFixed(2),
      ratio: r.ratio.toFixed(3),
      "overhead ms": r.overheadMs.toFixed(2),
    })),
  );
  console.log(`small CNN ratio ${cnn.ratio.toFixed(3)} (target <= 1.15): ${cnn.ratio <= 1.15 ? "met" : "MISSED"}`);
  console.log(`tiny-model fixed overhead ${tiny.overheadMs.toFixed(2)} ms (target <= 15 ms): ${tiny.overheadMs <= 15 ? "met" : "MISSED"}`);
  await mkdir("bench/results", { recursive: true });
  const out = `bench/results/onnx-overhead-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
  await writeFile(
    out,
    JSON.stringify(
      { date: new Date().toISOString(), repeats: REPEATS, batch: BATCH, threads: THREADS, ortVersion: ort.env.versions.common, rows },
      null,
      2,
    ),
  );
  console.log(`wrote ${out}`);
}

await main();
