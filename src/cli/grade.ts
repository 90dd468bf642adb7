/**
 * Grades one answer or ONNX file against a problem folder on this machine, without Postgres or
 * Redis: how an instructor checks a new problem (and its reference solution) before uploading it.
 *
 *   npm run grade -- problems/dl-midterm-review/p8-yolo-output-size '{"value": 1470}'
 *   npm run grade -- tests/fixtures/sets/onnx-basic/average-colour model.onnx --student alice
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { SingleBar, Presets } from "cli-progress";
import { loadSetFromDirectory, formatBundleErrors } from "../catalog/index.ts";
import { loadConfig } from "../config.ts";
import { studentSeed } from "../lib/crypto.ts";
import { prepareAnswer } from "../services/answers.ts";
import { createModelRuntime, preflightOptions } from "../grading/model-runtime.ts";
import { closeThreads, configureThreads, threadPool } from "../grading/threads/index.ts";
import { runGraderBounded } from "../grading/threads/run-grader.ts";
import { getGrader } from "../../graders/index.ts";
import type { GradeResult } from "../../graders/types.ts";

const usage = `usage: npm run grade -- <problem-folder> <answer-json | answer.json | model.onnx> [--student ID | --seed SEED] [--json]`;

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { student: { type: "string" }, seed: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help || positionals.length !== 2) {
    console.error(usage);
    process.exit(values.help ? 0 : 2);
  }
  const [problemDir, answerArg] = positionals as [string, string];
  const setDir = path.dirname(path.resolve(problemDir));
  const loaded = await loadSetFromDirectory(setDir);
  if (!loaded.ok) fail(`The set ${setDir} has errors:\n${formatBundleErrors(loaded.errors).join("\n")}`);
  const problem = loaded.set.problems.find((p) => p.slug === path.basename(path.resolve(problemDir)));
  if (!problem) fail(`${problemDir} is not a problem listed in ${path.join(setDir, "set.yaml")}`);
  const grader = getGrader(problem.graderType)!;
  const config = loadConfig();

  const input = answerArg.endsWith(".onnx")
    ? { model: { bytes: new Uint8Array(await readFile(answerArg)), filename: path.basename(answerArg) } }
    : { answer: JSON.parse(answerArg.trim().startsWith("{") ? answerArg : await readFile(answerArg, "utf8")) };
  const prepared = (() => {
    try {
      return prepareAnswer(grader, problem, input, { maxBytes: config.MODEL_MAX_BYTES, preflight: preflightOptions(config) });
    } catch (e) {
      return fail(`Refused before grading: ${(e as Error).message} ${JSON.stringify((e as { details?: unknown }).details ?? "")}`);
    }
  })();
  const seed = values.seed ?? (values.student ? studentSeed(config.SEED_SECRET, values.student, loaded.set.slug, problem.slug) : "local");

  const runtime = grader.modelSpec ? createModelRuntime(config, quietLog) : undefined;
  const bar = new SingleBar({ format: " grading [{bar}] {percentage}% | {value}/{total}", hideCursor: true }, Presets.shades_classic);
  let started = false;
  // Graded as the worker grades: in a grader thread or with the run's AbortSignal, within GRADER_TIMEOUT_S.
  configureThreads(config);
  try {
    const result = await runGraderBounded(
      {
        grader,
        config: grader.configSchema.parse(problem.graderConfig),
        privateData: problem.assets,
        answer: prepared.answer,
        seed,
        points: problem.points,
        model: prepared.blob?.bytes,
        runtime: runtime && (() => runtime),
        preflight: preflightOptions(config),
        onProgress: values.json
          ? undefined
          : (done, total) => {
              if (!started) bar.start(total, 0);
              started = true;
              bar.update(done);
            },
      },
      threadPool(),
      config.GRADER_TIMEOUT_S * 1000,
    );
    if (started) bar.stop();
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else print(result, grader.params?.(grader.configSchema.parse(problem.graderConfig), seed));
    process.exitCode = result.status === "graded" ? 0 : result.status === "rejected" ? 3 : 1;
  } finally {
    await runtime?.close();
    await closeThreads();
  }
}

function print(r: GradeResult, params?: object) {
  if (params && Object.keys(params).length) console.log(`parameters: ${JSON.stringify(params)}`);
  console.table(
    r.feedback.tests.map((t) => ({
      test: t.name,
      score: `${t.score}/${t.maxScore}`,
      status: t.status,
      visibility: t.visibility,
      message: t.message,
      ...(t.hint && t.status !== "passed" ? { "student hint": t.hint } : {}),
    })),
  );
  // An instructor checking a problem sees what only staff see, and what students see once it closed.
  for (const t of r.feedback.tests) {
    if (t.staffMessage) console.log(`${t.name} (staff): ${t.staffMessage}`);
    if (t.answerKey) console.log(`${t.name} (students, after the assignment closed): ${t.answerKey}`);
  }
  const code = r.code ? ` [${r.code}]` : "";
  console.log(`${r.status}${code}: ${r.score}/${r.maxScore} — ${r.feedback.summary}${r.needsReview ? " (flagged for manual review)" : ""}`);
  for (const reason of r.feedback.reviewReasons ?? []) console.log(`  review: ${reason}`);
  if (r.provenance)
    console.log(`provider ${r.provenance.executionProvider}, onnxruntime ${r.provenance.ortVersion}, input seed ${r.provenance.inputSeed}`);
}

const quietLog = { warn: (obj: object, msg: string) => console.error(`warning: ${msg} ${JSON.stringify(obj)}`) };

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

main().catch((e) => fail(`grade failed: ${(e as Error).message}`));
