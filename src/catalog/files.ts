import { createHash } from "node:crypto";
import type { BundleFiles } from "./types.ts";

/** Finder and Archive Utility litter that instructors' tarballs carry without meaning to. */
export function isJunk(relPath: string): boolean {
  const parts = relPath.split("/");
  const base = parts[parts.length - 1] ?? "";
  return parts.includes("__MACOSX") || base === ".DS_Store" || base.startsWith("._");
}

/**
 * `<problem>/solutions/` (path relative to the set folder) holds reference and wrong answers for
 * instructors, tests and the demo: the catalog never reads it, so it is never stored, served or
 * given to the grader, and editing it makes no new revision.
 */
export const isSolutionFile = (setRelPath: string): boolean => setRelPath.split("/")[1] === "solutions";

/** Paths are hashed with their length so that no (path, bytes) sequence can collide with another split. */
export function contentHash(files: ReadonlyMap<string, Uint8Array>): string {
  const hash = createHash("sha256");
  const len = Buffer.alloc(8);
  for (const path of [...files.keys()].sort()) {
    const name = Buffer.from(path, "utf8");
    const bytes = files.get(path)!;
    len.writeBigUInt64BE(BigInt(name.length));
    hash.update(len).update(name);
    len.writeBigUInt64BE(BigInt(bytes.length));
    hash.update(len).update(bytes);
  }
  return hash.digest("hex");
}

/** Folders directly under the set folder, whether they hold files or are empty. */
export function topFolders(bundle: BundleFiles): string[] {
  const names = new Set<string>();
  for (const p of [...bundle.files.keys(), ...bundle.dirs]) {
    const slash = p.indexOf("/");
    if (slash > 0) names.add(p.slice(0, slash));
    else if (bundle.dirs.has(p)) names.add(p);
  }
  return [...names].sort();
}
