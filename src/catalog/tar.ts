import { createGunzip } from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import { size } from "../grading/onnx/preflight-graph.ts";
import { isJunk, isSolutionFile } from "./files.ts";
import { defaultTarLimits, type BundleError, type BundleFiles, type TarLimits } from "./types.ts";

export type TarResult = { ok: true; bundle: BundleFiles } | { ok: false; errors: BundleError[] };

const MiB = 1024 * 1024;
const FILE_TYPES = new Set(["File", "OldFile", "ContiguousFile"]);
/** Enough to show what is wrong with an archive without echoing thousands of lines. */
const MAX_ERRORS = 50;

/**
 * Reads an uploaded .tar.gz in memory, never touching the disk. Entry-level problems (bad
 * paths, links, devices) are collected and reading goes on; exceeding a limit stops at once.
 */
export function readTarGz(buffer: Uint8Array, limits: Partial<TarLimits> = {}): Promise<TarResult> {
  const lim = { ...defaultTarLimits, ...limits };
  if (buffer.length < 2 || buffer[0] !== 0x1f || buffer[1] !== 0x8b) {
    return Promise.resolve(fail("", "not a gzip file: upload the set folder as a .tar.gz"));
  }
  // Headers, padding and pax records cost at most about 1.5 KiB per entry; anything beyond that
  // (gigabytes of zeros in skipped litter, folder bodies or oversized pax records) is a bomb.
  const maxStream = lim.maxTotalBytes + lim.maxEntries * 1536 + MiB;

  return new Promise((resolve) => {
    const errors: BundleError[] = [];
    const files = new Map<string, Uint8Array>();
    const dirs = new Set<string>();
    let entries = 0;
    let fileBytes = 0;
    let streamBytes = 0;
    let done = false;

    const gunzip = createGunzip();
    const parser = new Parser({ zstd: false, maxMetaEntrySize: 64 * 1024 });

    const finish = () => {
      if (done) return;
      done = true;
      gunzip.destroy();
      resolve(errors.length > 0 ? { ok: false, errors } : splitRoot(files, dirs));
    };
    const stop = (file: string, message: string) => {
      errors.push({ file, path: "", message });
      finish();
      parser.abort(new Error(message));
    };
    const refuse = (file: string, message: string) => {
      errors.push({ file, path: "", message });
      if (errors.length >= MAX_ERRORS) stop("", `stopped reading after ${MAX_ERRORS} refused entries`);
    };
    const onEntry = (entry: ReadEntry) => {
      if (done) return entry.resume();
      if (++entries > lim.maxEntries) return stop("", `more than ${lim.maxEntries} entries in the archive`);
      const raw = entry.path;
      const path = raw.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
      const bad = badPath(raw, path);
      if (bad) {
        refuse(raw, bad);
        return entry.resume();
      }
      if (path === "" || path === "." || isJunk(path) || isSolutionFile(path.slice(path.indexOf("/") + 1))) return entry.resume();
      if (entry.type === "Directory") {
        dirs.add(path);
        return entry.resume();
      }
      if (!FILE_TYPES.has(entry.type)) {
        refuse(raw, `${describe(entry.type)} not allowed: only regular files and folders`);
        return entry.resume();
      }
      if (entry.size > lim.maxFileBytes) {
        return stop(raw, `file is ${size(entry.size)}, over the limit of ${size(lim.maxFileBytes)} per file`);
      }
      fileBytes += entry.size;
      if (fileBytes > lim.maxTotalBytes) {
        return stop(raw, `files add up to more than ${size(lim.maxTotalBytes)} uncompressed`);
      }
      const chunks: Buffer[] = [];
      entry.on("data", (c: Buffer) => chunks.push(c));
      entry.on("end", () => files.set(path, new Uint8Array(Buffer.concat(chunks))));
    };

    parser.on("entry", onEntry);
    parser.on("ignoredEntry", (entry: ReadEntry) => {
      if (!done && !entry.meta) refuse(entry.path, `unsupported tar entry type "${entry.type}"`);
    });
    // Warnings mean a damaged or non-tar stream; reading on would only repeat them per block.
    parser.on("warn", (code: string, message: string) => {
      if (done) return;
      const unrecognised = entries === 0;
      stop("", unrecognised ? "the gzip data is not a tar archive" : `damaged tar archive (${code}): ${message}`);
    });
    parser.on("error", (err: Error) => {
      if (!done) stop("", `damaged tar archive: ${err.message}`);
    });
    // Whatever follows the end-of-archive marker is ignored, so stop inflating right there; the
    // parser would otherwise keep re-buffering the trailer (quadratic in its length).
    parser.on("eof", finish);
    parser.on("end", finish);

    gunzip.on("data", (chunk: Buffer) => {
      if (done) return;
      streamBytes += chunk.length;
      if (streamBytes > maxStream) return stop("", `archive expands to more than ${size(maxStream)}; refusing to unpack it`);
      parser.write(chunk);
    });
    gunzip.on("end", () => {
      if (!done) parser.end();
    });
    gunzip.on("error", (err: Error) => {
      if (!done) stop("", `corrupt gzip data: ${err.message}`);
    });
    gunzip.end(buffer);
  });
}

function badPath(raw: string, path: string): string | undefined {
  if (raw.startsWith("/") || /^[A-Za-z]:/.test(raw) || raw.startsWith("\\")) return "absolute paths are not allowed";
  if (raw.includes("\\")) return "backslashes are not allowed in paths";
  if (raw.includes("\0")) return "NUL characters are not allowed in paths";
  if (path.split("/").includes("..")) return '".." is not allowed in paths';
  return undefined;
}

function describe(type: string): string {
  if (type === "SymbolicLink") return "symbolic links are";
  if (type === "Link") return "hard links are";
  if (type === "CharacterDevice" || type === "BlockDevice") return "device files are";
  if (type === "FIFO") return "named pipes are";
  return `entries of type "${type}" are`;
}

function fail(file: string, message: string): { ok: false; errors: BundleError[] } {
  return { ok: false, errors: [{ file, path: "", message }] };
}

/** The bundle is one set folder: strip it, so that every later path is relative to the set. */
function splitRoot(files: Map<string, Uint8Array>, dirs: Set<string>): TarResult {
  const roots = new Set<string>();
  const loose: string[] = [];
  for (const p of files.keys()) {
    if (p.includes("/")) roots.add(p.split("/")[0]!);
    else loose.push(p);
  }
  for (const d of dirs) roots.add(d.split("/")[0]!);
  if (loose.length > 0) {
    return fail(loose[0]!, `files must be inside the set folder, found ${loose.map((f) => `"${f}"`).join(", ")} at the top level`);
  }
  if (roots.size !== 1) {
    const found = roots.size === 0 ? "an empty archive" : `${roots.size} folders: ${[...roots].sort().join(", ")}`;
    return fail("", `the archive must hold exactly one top-level folder (the set), found ${found}`);
  }
  const root = [...roots][0]!;
  const strip = (p: string) => p.slice(root.length + 1);
  return {
    ok: true,
    bundle: {
      root,
      files: new Map([...files].map(([p, b]) => [strip(p), b])),
      dirs: new Set([...dirs].filter((d) => d !== root).map(strip)),
    },
  };
}
