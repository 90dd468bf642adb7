/** One problem found in a bundle; `file` is relative to the set folder, `path` a field path ("" = whole file). */
export interface BundleError {
  file: string;
  path: string;
  message: string;
}

export interface LoadedProblem {
  slug: string;
  /** Index in set.yaml's `problems` list, from 0. */
  position: number;
  title: string;
  points: number;
  /** Markdown; a `statement: file.md` reference is already inlined. */
  statement: string;
  graderType: string;
  /** Output of the grader's configSchema (private: holds the answers). */
  graderConfig: unknown;
  /** Every other file of the problem folder by path relative to it; private. */
  assets: Map<string, Uint8Array>;
}

export interface LoadedSet {
  slug: string;
  title: string;
  description?: string;
  /** sha256 (hex) over the sorted (path, bytes) of every file of the set. */
  contentHash: string;
  problems: LoadedProblem[];
}

export type LoadResult = { ok: true; set: LoadedSet } | { ok: false; errors: BundleError[] };

/** Files of one set folder: paths relative to it, "/"-separated; `dirs` includes empty folders. */
export interface BundleFiles {
  root: string;
  files: Map<string, Uint8Array>;
  dirs: Set<string>;
}

export interface TarLimits {
  /** Entries of any kind (files, folders, ignored junk). */
  maxEntries: number;
  maxFileBytes: number;
  /** Sum of the file sizes; the raw tar stream may exceed it only by header overhead. */
  maxTotalBytes: number;
}

export const defaultTarLimits: TarLimits = {
  maxEntries: 2000,
  maxFileBytes: 32 * 1024 * 1024,
  maxTotalBytes: 64 * 1024 * 1024,
};
