import { z } from "zod";
import { contentHash, topFolders } from "./files.ts";
import { parseYaml, zodErrors } from "./issues.ts";
import { loadProblem } from "./problem.ts";
import type { BundleError, BundleFiles, LoadedProblem, LoadResult } from "./types.ts";

const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const slug = z.string().regex(SLUG, "must be lowercase kebab-case (a-z, 0-9 and single dashes)");

const setSchema = z.strictObject({
  slug,
  title: z.string().trim().min(1),
  description: z.string().optional(),
  problems: z.array(slug).min(1),
});

/** Validates a whole set folder and reports every error found, not just the first. */
export function loadSet(bundle: BundleFiles): LoadResult {
  const errors: BundleError[] = [];
  if (!SLUG.test(bundle.root)) {
    errors.push({ file: "", path: "", message: `set folder "${bundle.root}" must be named with a lowercase kebab-case slug` });
  }

  let meta: z.infer<typeof setSchema> | undefined;
  let listed: string[] = [];
  const setBytes = bundle.files.get("set.yaml");
  if (!setBytes) {
    errors.push({ file: "set.yaml", path: "", message: "missing: the set folder needs a set.yaml" });
  } else {
    const parsed = parseYaml("set.yaml", setBytes);
    if (!parsed.ok) errors.push(...parsed.errors);
    else {
      const doc = setSchema.safeParse(parsed.value);
      if (doc.success) meta = doc.data;
      else errors.push(...zodErrors("set.yaml", "", doc.error.issues));
      // Check the listing even when another field is wrong, so one upload shows every mistake.
      const raw = (parsed.value as { problems?: unknown } | null)?.problems;
      if (Array.isArray(raw)) listed = raw.filter((p): p is string => typeof p === "string");
      const s = (parsed.value as { slug?: unknown } | null)?.slug;
      if (typeof s === "string" && s !== bundle.root) {
        errors.push({ file: "set.yaml", path: "slug", message: `slug "${s}" must equal the set folder's name "${bundle.root}"` });
      }
    }
  }

  const folders = topFolders(bundle);
  const rawList = listed;
  rawList.forEach((p, i) => {
    if (rawList.indexOf(p) !== i) errors.push({ file: "set.yaml", path: `problems[${i}]`, message: `"${p}" is listed more than once` });
    else if (!folders.includes(p))
      errors.push({ file: "set.yaml", path: `problems[${i}]`, message: `no problem folder "${p}/" in the set` });
  });
  if (setBytes) {
    for (const f of folders) {
      if (!listed.includes(f))
        errors.push({ file: "set.yaml", path: "problems", message: `problem folder "${f}/" is not listed in problems` });
    }
  }

  const problems = new Map<string, Omit<LoadedProblem, "position">>();
  for (const folder of folders) {
    if (!SLUG.test(folder)) {
      errors.push({ file: `${folder}/`, path: "", message: "problem folder names must be lowercase kebab-case slugs" });
      continue;
    }
    const r = loadProblem(folder, filesUnder(bundle.files, folder));
    if (r.ok) problems.set(folder, r.problem);
    else errors.push(...r.errors);
  }

  if (errors.length > 0 || !meta) return { ok: false, errors };
  return {
    ok: true,
    set: {
      slug: meta.slug,
      title: meta.title,
      ...(meta.description !== undefined && { description: meta.description }),
      contentHash: contentHash(bundle.files),
      problems: meta.problems.map((s, position) => ({ ...problems.get(s)!, position })),
    },
  };
}

function filesUnder(files: ReadonlyMap<string, Uint8Array>, folder: string): Map<string, Uint8Array> {
  const prefix = `${folder}/`;
  return new Map([...files].filter(([p]) => p.startsWith(prefix)).map(([p, b]) => [p.slice(prefix.length), b]));
}
