import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** `npm run grade`: an instructor grading on their own machine, no Postgres or Redis. */
function grade(...args: string[]) {
  return gradeWith({}, ...args);
}
function gradeWith(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/grade.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, DATABASE_URL: "postgresql://nobody@127.0.0.1:1/none", REDIS_URL: "redis://127.0.0.1:1", ...env },
    timeout: 90_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

// Each run starts a process and a grader thread (both load the graders); on a busy machine that is many seconds.
describe("npm run grade", { timeout: 120_000 }, () => {
  it("grades a JSON answer against a problem folder and prints the feedback", () => {
    const right = grade("tests/fixtures/sets/grader-zoo/numeric-fixed", '{"value": 3.14}');
    expect(right.code).toBe(0);
    expect(right.out).toMatch(/graded: 1\/1/);
    expect(grade("tests/fixtures/sets/grader-zoo/numeric-fixed", '{"value": 3}').out).toMatch(/graded: 0\/1/);
  });

  it("shows a student's own numbers and grades them", () => {
    const r = grade("tests/fixtures/sets/grader-zoo/numeric-random", '{"value": 1}', "--student", "alice");
    expect(r.out).toMatch(/parameters: \{"a":\d+,"b":\d+\}/);
    const { a, b } = JSON.parse(/parameters: (\{.*\})/.exec(r.out)![1]!);
    expect(grade("tests/fixtures/sets/grader-zoo/numeric-random", JSON.stringify({ value: a * b }), "--student", "alice").out).toMatch(
      /graded: 3\/3/,
    );
  });

  it("grades an ONNX model in the sandbox, and refuses a hostile one before any session", () => {
    const ok = grade("tests/fixtures/sets/onnx-basic/vae-kl", "tests/fixtures/onnx/basic/function/vae_kl_ok.onnx");
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/graded: 3\/3/);
    expect(ok.out).toMatch(/provider cpu, onnxruntime 1\.\d+/);
    // Shutting down kills the spare children still warming: that is not a child failing to start.
    expect(ok.out).not.toMatch(/failed to start|SIGKILL/);
    const refused = grade("tests/fixtures/sets/onnx-hostile/double", "tests/fixtures/onnx/hostile/external_initializer.onnx");
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(/EXTERNAL_DATA/);
  });

  it("grades in a grader thread within GRADER_TIMEOUT_S: a reference too slow to check is stopped, not waited for", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cli-slow-"));
    try {
      await mkdir(join(dir, "slow-set", "slow"), { recursive: true });
      await writeFile(join(dir, "slow-set", "set.yaml"), "slug: slow-set\ntitle: Slow\nproblems: [slow]\n");
      await writeFile(
        join(dir, "slow-set", "slow", "problem.yaml"),
        'title: Slow\npoints: 1\nstatement: Write x.\ngrader:\n  type: expression\n  answer: "x + 0 * sum(ones(1000, 1000))"\n  variables: { x: { min: 1, max: 2 } }\n  samples: 1000\n',
      );
      const r = gradeWith({ GRADER_TIMEOUT_S: "1" }, join(dir, "slow-set", "slow"), '{"expression": "x"}');
      expect(r.out).toMatch(/error \[GRADER_TIMEOUT\]: 0\/1 — Grading stopped: the problem's grader did not finish within its 1 s budget/);
      expect(r.code).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("explains its usage", () => {
    const r = grade();
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/usage: npm run grade/);
  });
});
