import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { readSetDirectory } from "./directory.ts";
import { contentHash, isJunk } from "./files.ts";
import { loadSet } from "./set.ts";
import { readTarGz } from "./tar.ts";
import { ThreadOutOfMemory, ThreadTimeout, validateBundleInThread } from "../grading/threads/index.ts";
import type { BundleError, LoadedSet, LoadResult, TarLimits } from "./types.ts";

export type { BundleError, LoadedProblem, LoadedSet, LoadResult, TarLimits } from "./types.ts";
export { defaultTarLimits } from "./types.ts";

/** A set folder on disk (problems/<slug>/). */
export async function loadSetFromDirectory(dir: string): Promise<LoadResult> {
  const read = await readSetDirectory(dir);
  return read.ok ? loadSet(read.bundle) : read;
}

/**
 * An uploaded .tar.gz holding one set folder, parsed in memory within `limits`. Unpacking and every
 * check (instructor expressions, patterns, rubric self-checks) run in a grader thread with a heap cap
 * and a time budget (GRADER_TIMEOUT_S unless `timeoutMs`), so a hostile bundle costs that thread,
 * never the API's event loop or memory.
 */
export async function loadSetFromTarGz(
  buffer: Uint8Array,
  limits: Partial<TarLimits> = {},
  opts: { timeoutMs?: number } = {},
): Promise<LoadResult> {
  try {
    return await validateBundleInThread(buffer, limits, opts);
  } catch (e) {
    if (e instanceof ThreadTimeout || e instanceof ThreadOutOfMemory) {
      const what = e instanceof ThreadTimeout ? `took longer than ${e.ms / 1000} s` : e.message;
      const message = `checking the bundle ${what}: an expression, pattern or file in it is too expensive to evaluate`;
      return { ok: false, errors: [{ file: "", path: "", message }] };
    }
    throw e;
  }
}

/** The same parse and validation on this thread: for the grader threads themselves and trusted callers. */
export async function parseSetTarGz(buffer: Uint8Array, limits: Partial<TarLimits> = {}): Promise<LoadResult> {
  const read = await readTarGz(buffer, limits);
  return read.ok ? loadSet(read.bundle) : read;
}

export type LoadAllResult = { ok: true; sets: LoadedSet[]; unchanged: string[] } | { ok: false; errors: BundleError[] };

/**
 * Every folder of `problemsDir`, for start-up; errors name files as `<set folder>/<file>`. `unchanged(slug, hash)`
 * says a folder's exact content is already the set's current revision (it passed validation when stored): such a
 * folder is listed in `unchanged` without being validated again, so a restart with the same problems/ costs a read
 * and a hash per set, not every expression compile and self-check.
 */
export async function loadAllSets(
  problemsDir: string,
  unchanged?: (slug: string, contentHash: string) => Promise<boolean>,
): Promise<LoadAllResult> {
  let entries;
  try {
    entries = await readdir(problemsDir, { withFileTypes: true });
  } catch (e) {
    return { ok: false, errors: [{ file: "", path: "", message: `cannot read problems folder ${problemsDir}: ${(e as Error).message}` }] };
  }
  const sets: LoadedSet[] = [];
  const same: string[] = [];
  const errors: BundleError[] = [];
  for (const ent of entries.filter((e) => e.isDirectory() && !isJunk(e.name)).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const read = await readSetDirectory(join(problemsDir, ent.name));
    if (read.ok && unchanged && (await unchanged(read.bundle.root, contentHash(read.bundle.files)))) {
      same.push(read.bundle.root);
      continue;
    }
    const r = read.ok ? loadSet(read.bundle) : read;
    if (r.ok) sets.push(r.set);
    else errors.push(...r.errors.map((e) => ({ ...e, file: e.file === "" ? `${ent.name}/` : `${ent.name}/${e.file}` })));
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, sets, unchanged: same };
}

/** One line per error, `file: path: message`, leaving out an empty path. */
export function formatBundleErrors(errors: readonly BundleError[]): string[] {
  return errors.map((e) => [e.file || "(bundle)", e.path, e.message.replace(/\s*\n\s*/g, " ")].filter(Boolean).join(": "));
}
