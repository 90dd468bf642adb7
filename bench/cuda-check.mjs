#!/usr/bin/env node
/**
 * End-to-end check of a CUDA host, in plain Node with onnxruntime-node alone (no registry, no build):
 * a session on the CUDA provider, outputs equal to the CPU provider's within tolerance, and the time
 * ratio. Copy this file, a model (default bench/models/small_cnn.onnx) and node_modules/onnxruntime-node
 * (installed with ONNXRUNTIME_NODE_INSTALL=cuda12) to the host, then:
 *
 *   node bench/cuda-check.mjs [model.onnx] [--inputs 1000] [--batch 250]
 *
 * Exit code 0 when CUDA ran and matched the CPU, 1 otherwise. Writes JSON next to the printed table.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const ort = require("onnxruntime-node");
const args = process.argv.slice(2);
const flag = (name, dflt) => Number(args[args.indexOf(`--${name}`) + 1] ?? dflt) || dflt;
const modelPath = args.find((a) => a.endsWith(".onnx")) ?? new URL("./models/small_cnn.onnx", import.meta.url).pathname;
const INPUTS = flag("inputs", 1000);
const BATCH = flag("batch", 250);
const RTOL = 1e-3;
const ATOL = 1e-4;

const model = readFileSync(modelPath);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run(providers) {
  const session = await ort.InferenceSession.create(model, { executionProviders: providers });
  const input = session.inputNames[0];
  const meta = session.inputMetadata?.[0];
  const sample = (meta?.shape ?? [null, 1, 28, 28]).slice(1).map((d) => (typeof d === "number" ? d : 1));
  const per = sample.reduce((a, b) => a * b, 1);
  let seed = 7;
  const x = Float32Array.from({ length: INPUTS * per }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const outputs = [];
  const times = [];
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    outputs.length = 0;
    for (let i = 0; i < INPUTS; i += BATCH) {
      const n = Math.min(BATCH, INPUTS - i);
      const out = await session.run({ [input]: new ort.Tensor("float32", x.subarray(i * per, (i + n) * per), [n, ...sample]) });
      outputs.push(out[session.outputNames[0]].data);
    }
    times.push(performance.now() - t0);
  }
  await session.release();
  return { ms: median(times.slice(1)), data: outputs };
}

const result = { model: modelPath, inputs: INPUTS, batch: BATCH, ortVersion: ort.env.versions.common, ok: false };
try {
  const cpu = await run(["cpu"]);
  let cuda;
  try {
    cuda = await run(["cuda"]);
  } catch (e) {
    throw new Error(`no CUDA session: ${e.message.split("\n")[0]}`, { cause: e });
  }
  let worst = 0;
  cpu.data.forEach((a, i) => a.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - cuda.data[i][j]) - RTOL * Math.abs(v)))));
  Object.assign(result, { cpuMs: cpu.ms, cudaMs: cuda.ms, speedup: cpu.ms / cuda.ms, maxExcessError: worst, ok: worst <= ATOL });
  console.table([
    { provider: "cpu", "median ms": cpu.ms.toFixed(2) },
    { provider: "cuda", "median ms": cuda.ms.toFixed(2) },
  ]);
  console.log(`CUDA/CPU outputs ${result.ok ? "match" : "DIFFER"} (rtol ${RTOL}, atol ${ATOL}); speed-up ×${result.speedup.toFixed(2)}`);
} catch (e) {
  result.error = e.message;
  console.error(`CUDA check failed: ${e.message}`);
}
const dir = new URL("./results/", import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
const file = `${dir}cuda-check-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
writeFileSync(file, JSON.stringify(result, null, 2));
console.log(`wrote ${file}`);
process.exit(result.ok ? 0 : 1);
