import { randomUUID } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { multipart, tarGzOf } from "./bundles.ts";
import type { Harness } from "./harness.ts";

async function inTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const tmp = await mkdtemp(path.join(tmpdir(), "set-"));
  try {
    return await fn(tmp);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * A one-problem choice set under any slug with the given answer key, plus a private file with fresh bytes, so that
 * storing it would write a new blob (which is how a test proves that a refused upload wrote nothing).
 */
export function choiceBundle(slug: string, opts: { correct: string[]; problem?: string; title?: string }): Promise<Buffer> {
  const problem = opts.problem ?? "pick";
  const options = [...new Set(["red", "dog", ...opts.correct])].map((id) => `{ id: ${id}, text: ${id} }`).join(", ");
  return inTemp(async (tmp) => {
    const dir = path.join(tmp, slug);
    await mkdir(path.join(dir, problem), { recursive: true });
    await writeFile(path.join(dir, "set.yaml"), `slug: ${slug}\ntitle: ${opts.title ?? slug}\nproblems: [${problem}]\n`);
    await writeFile(
      path.join(dir, problem, "problem.yaml"),
      `title: Pick\npoints: 2\nstatement: Pick one.\ngrader:\n  type: choice\n  options: [${options}]\n  correct: [${opts.correct.join(", ")}]\n  multiple: ${opts.correct.length > 1}\n`,
    );
    await writeFile(path.join(dir, problem, "notes.txt"), randomUUID());
    return tarGzOf(dir);
  });
}

/** The set folder `dir` under another slug, as an instructor copies a catalog set to make a variant. */
export function renamedBundle(dir: string, slug: string): Promise<Buffer> {
  return inTemp(async (tmp) => {
    const copy = path.join(tmp, slug);
    await cp(dir, copy, { recursive: true });
    const yaml = await readFile(path.join(copy, "set.yaml"), "utf8");
    await writeFile(path.join(copy, "set.yaml"), yaml.replace(/^slug: .*$/m, `slug: ${slug}`));
    return tarGzOf(copy);
  });
}

export const uploadBundle = (h: Harness, token: string, bundle: Buffer): Promise<LightMyRequestResponse> =>
  h.app.inject({
    method: "POST",
    url: "/v1/problem-sets",
    headers: { authorization: `Bearer ${token}` },
    payload: multipart("bundle", "set.tar.gz", bundle) as never,
  });
