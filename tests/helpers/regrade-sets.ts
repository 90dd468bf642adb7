import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { tarGzOf } from "./bundles.ts";
import type { Harness } from "./harness.ts";

/**
 * A two-problem set whose answer keys a test chooses, so that a new revision changes scores: `pick` (choice,
 * 2 points) and a numeric problem (1 point, slug `num` unless renamed, which makes a revision without `num`).
 */
export async function keyedSet(slug: string, keys: { pick: string; num: number; numSlug?: string }): Promise<Buffer> {
  const tmp = await mkdtemp(path.join(tmpdir(), "keyed-"));
  try {
    const dir = path.join(tmp, slug);
    const numSlug = keys.numSlug ?? "num";
    await mkdir(path.join(dir, "pick"), { recursive: true });
    await mkdir(path.join(dir, numSlug), { recursive: true });
    await writeFile(path.join(dir, "set.yaml"), `slug: ${slug}\ntitle: ${slug}\nproblems: [pick, ${numSlug}]\n`);
    await writeFile(
      path.join(dir, "pick", "problem.yaml"),
      `title: Pick\npoints: 2\nstatement: Pick one.\ngrader:\n  type: choice\n  options: [{ id: red, text: Red }, { id: dog, text: Dog }]\n  correct: [${keys.pick}]\n`,
    );
    await writeFile(
      path.join(dir, numSlug, "problem.yaml"),
      `title: A number\npoints: 1\nstatement: Which number?\ngrader:\n  type: numeric\n  answer: ${keys.num}\n  rtol: 0.001\n`,
    );
    return await tarGzOf(dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export interface RegradeReport {
  id: string;
  status: string;
  total: number;
  done: number;
  failed: number;
  skipped: { submissionId: string; problem: string }[];
  changes: { userId: string; name: string; problem: string | null; old: number | null; new: number | null }[];
}

/** Polls GET /v1/regrades/{id} (which also finishes a regrade whose runs have all been graded) until it is done. */
export async function waitForRegrade(h: Harness, id: string, token: string, timeoutMs = 30_000): Promise<RegradeReport> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await h.call("GET", `/v1/regrades/${id}`, { token });
    if (res.statusCode !== 200) throw new Error(`regrade ${id}: ${res.statusCode} ${res.body}`);
    const body = res.json() as RegradeReport;
    if (body.status === "done") return body;
    if (Date.now() > until) throw new Error(`regrade ${id} still ${body.status} (${body.done}/${body.total}) after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
