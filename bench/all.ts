/**
 * `npm run bench`: every benchmark in sequence, each in its own process (ingest, end to end, exam spike, scale-out,
 * ONNX overhead, export, start-up, worker drain), each printing its table and writing its JSON to bench/results/. `--quick` runs each with
 * small counts and short durations, to check that the suite works, not to measure.
 *
 *   npm run bench [-- --quick] [-- --only ingest,e2e]
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { log, printTable } from "./lib/report.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, only: { type: "string" } } });
const quick = values.quick!;
const scripts = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts;

/** name → npm script and its arguments in quick mode (the onnx and export benchmarks take repeats). */
const SUITE: [string, string, string[]][] = [
  ["ingest", "bench:ingest", ["--quick"]],
  ["e2e", "bench:e2e", ["--quick"]],
  ["spike", "bench:spike", ["--quick"]],
  ["scale-out", "bench:scale", ["--quick"]],
  ["onnx", "bench:onnx", ["--repeats", "3"]],
  ["export", "bench:export", ["--repeats", "1"]],
  ["startup", "bench:startup", ["--restarts", "1"]],
  ["worker", "bench:worker", ["--count", "500"]],
];
const only = values.only?.split(",");
const outcomes = [];
for (const [name, script, quickArgs] of SUITE) {
  if (only && !only.includes(name)) continue;
  if (!scripts[script]) {
    outcomes.push({ benchmark: name, script, outcome: "not in package.json: skipped", seconds: 0 });
    continue;
  }
  log(`── ${name} (npm run ${script}${quick ? ` -- ${quickArgs.join(" ")}` : ""})`);
  const t0 = performance.now();
  const r = spawnSync("npm", ["run", "-s", script, ...(quick ? ["--", ...quickArgs] : [])], { stdio: "inherit" });
  outcomes.push({
    benchmark: name,
    script,
    outcome: r.status === 0 ? "ok" : `exit ${r.status ?? r.signal}`,
    seconds: Math.round((performance.now() - t0) / 1000),
  });
}
printTable(`Benchmark suite${quick ? " (--quick: a smoke check, not a measurement)" : ""}`, outcomes);
process.exit(outcomes.every((o) => o.outcome === "ok" || o.outcome.startsWith("not in")) ? 0 : 1);
