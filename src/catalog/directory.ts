import { lstat, readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { isJunk, isSolutionFile } from "./files.ts";
import type { BundleError, BundleFiles } from "./types.ts";

export type DirResult = { ok: true; bundle: BundleFiles } | { ok: false; errors: BundleError[] };

/** Same shape as an unpacked upload, so both sources go through one validation. */
export async function readSetDirectory(dir: string): Promise<DirResult> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return { ok: false, errors: [{ file: "", path: "", message: `not a folder: ${dir}` }] };
  const bundle: BundleFiles = { root: basename(dir), files: new Map(), dirs: new Set() };
  const errors: BundleError[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const ent of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = rel === "" ? ent.name : `${rel}/${ent.name}`;
      if (isJunk(path) || isSolutionFile(path)) continue;
      if (ent.isDirectory()) {
        bundle.dirs.add(path);
        await walk(path);
      } else if (ent.isFile()) {
        bundle.files.set(path, new Uint8Array(await readFile(join(dir, path))));
      } else {
        // Uploads may not carry links either; a folder must not mean more than its tarball would.
        errors.push({ file: path, path: "", message: "only regular files and folders are allowed (no links or devices)" });
      }
    }
  };
  await walk("");
  return errors.length > 0 ? { ok: false, errors } : { ok: true, bundle };
}
