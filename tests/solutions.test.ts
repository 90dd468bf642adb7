import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadSetFromDirectory, loadSetFromTarGz } from "../src/catalog/index.ts";
import { answerFor, readSolutions, resolveAnswer } from "../src/catalog/solutions.ts";
import { tarGzOf } from "./helpers/bundles.ts";

const ZOO = "tests/fixtures/sets/grader-zoo";

async function withSolutions(dir: string) {
  await mkdir(path.join(dir, "numeric-random/solutions"), { recursive: true });
  await writeFile(path.join(dir, "numeric-random/solutions/reference.json"), JSON.stringify({ value: "=a * b" }));
  await writeFile(path.join(dir, "numeric-random/solutions/wrong-sum.json"), JSON.stringify({ value: "=a + b" }));
}

describe("problem solutions", () => {
  it("are never loaded: not an asset, no new revision, from a folder or a tarball", async () => {
    const plain = await loadSetFromDirectory(ZOO);
    const bundle = await tarGzOf(ZOO, withSolutions);
    const uploaded = await loadSetFromTarGz(bundle);
    expect(plain.ok && uploaded.ok).toBe(true);
    if (!plain.ok || !uploaded.ok) return;
    expect(uploaded.set.contentHash).toBe(plain.set.contentHash);
    const problem = uploaded.set.problems.find((p) => p.slug === "numeric-random")!;
    expect([...problem.assets.keys()]).toEqual([]);
  });

  it("resolve against a student's parameters", () => {
    expect(resolveAnswer({ value: "=a * b", note: "kept", list: ["=a", 2] }, { a: 3, b: 4 })).toEqual({
      value: 12,
      note: "kept",
      list: [3, 2],
    });
    expect(resolveAnswer({ value: "=X * transpose(X)" }, { X: [[1, 2]] })).toEqual({ value: [[5]] });
  });

  it("are read as reference and wrong answers, JSON and code alike", async () => {
    const dir = path.join("/tmp", `solutions-${process.pid}`);
    await mkdir(path.join(dir, "p/solutions"), { recursive: true });
    await writeFile(path.join(dir, "p/solutions/reference.json"), JSON.stringify({ value: "=a * 2" }));
    await writeFile(path.join(dir, "p/solutions/wrong-half.ts"), "export default (p: { a: number }) => ({ value: p.a / 2 });\n");
    await writeFile(path.join(dir, "p/solutions/notes.md"), "ignored");
    const solutions = await readSolutions(path.join(dir, "p"));
    expect(solutions.map((s) => [s.name, s.kind])).toEqual([
      ["reference.json", "reference"],
      ["wrong-half.ts", "wrong"],
    ]);
    expect(solutions.map((s) => answerFor(s, { a: 8 }))).toEqual([{ value: 16 }, { value: 4 }]);
  });
});
