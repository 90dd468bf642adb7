import { z } from "zod";
import { getGrader, graderTypes } from "../../graders/index.ts";
import { fieldPath, parseYaml, zodErrors } from "./issues.ts";
import type { BundleError, LoadedProblem } from "./types.ts";

const problemSchema = z.strictObject({
  title: z.string().trim().min(1),
  points: z.number().positive().finite(),
  statement: z.string().trim().min(1),
  grader: z.looseObject({ type: z.string().min(1) }),
});

/** A statement that is one word ending in .md names a file; anything else is Markdown itself. */
const STATEMENT_FILE = /^\S+\.md$/;
/** `{{name}}` placeholders a randomised problem fills in per student. */
const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g;
/** Any fixed seed will do: load-time checks only need params() and answerFormat() to work. */
const CHECK_SEED = "catalog-load-check";

export type ProblemResult = { ok: true; problem: Omit<LoadedProblem, "position"> } | { ok: false; errors: BundleError[] };

/** Validates one problem folder; `files` holds its files by path relative to the folder. */
export function loadProblem(slug: string, files: ReadonlyMap<string, Uint8Array>): ProblemResult {
  const yamlFile = `${slug}/problem.yaml`;
  const bytes = files.get("problem.yaml");
  if (!bytes) return fail(yamlFile, "", "missing: every problem folder needs a problem.yaml");
  const parsed = parseYaml(yamlFile, bytes);
  if (!parsed.ok) return parsed;
  const doc = problemSchema.safeParse(parsed.value);
  const errors: BundleError[] = doc.success ? [] : zodErrors(yamlFile, "", doc.error.issues);
  const raw = (isRecord(parsed.value) ? parsed.value : {}) as Record<string, unknown>;

  const statement = resolveStatement(slug, raw.statement, files, errors);
  const grader = loadGrader(yamlFile, raw.grader, files, errors, doc.success ? doc.data.points : undefined);
  if (grader?.placeholders && statement !== undefined) {
    for (const [, name] of statement.text.matchAll(PLACEHOLDER)) {
      if (!grader.placeholders.includes(name!)) {
        errors.push({
          file: statement.file,
          path: statement.path,
          message: `placeholder {{${name}}} is not a parameter of the grader (parameters: ${grader.placeholders.join(", ") || "none"})`,
        });
      }
    }
  }
  if (!doc.success || errors.length > 0 || !grader || statement === undefined) return { ok: false, errors };

  const assets = new Map([...files].filter(([p]) => p !== "problem.yaml" && p !== statement.ownFile));
  return {
    ok: true,
    problem: {
      slug,
      title: doc.data.title,
      points: doc.data.points,
      statement: statement.text,
      graderType: grader.type,
      graderConfig: grader.config,
      assets,
    },
  };
}

interface Statement {
  text: string;
  /** Where placeholder errors point. */
  file: string;
  path: string;
  /** The statement's own file inside the folder, kept out of the private assets. */
  ownFile?: string;
}

function resolveStatement(
  slug: string,
  value: unknown,
  files: ReadonlyMap<string, Uint8Array>,
  errors: BundleError[],
): Statement | undefined {
  if (typeof value !== "string") return undefined;
  const yamlFile = `${slug}/problem.yaml`;
  const name = value.trim();
  if (!STATEMENT_FILE.test(name)) return { text: value, file: yamlFile, path: "statement" };
  const rel = name.replace(/^\.\//, "");
  if (rel.startsWith("/") || rel.split("/").includes("..")) {
    errors.push({ file: yamlFile, path: "statement", message: `"${name}" must be a file inside the problem folder` });
    return undefined;
  }
  const bytes = files.get(rel);
  if (!bytes) {
    errors.push({ file: yamlFile, path: "statement", message: `statement file "${rel}" not found in ${slug}/` });
    return undefined;
  }
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return { text, file: `${slug}/${rel}`, path: "", ownFile: rel };
  } catch {
    errors.push({ file: `${slug}/${rel}`, path: "", message: "not valid UTF-8 text" });
    return undefined;
  }
}

interface CheckedGrader {
  type: string;
  config: unknown;
  /** Parameter names the statement may use; undefined when the grader is not randomised. */
  placeholders?: string[];
}

function loadGrader(
  file: string,
  value: unknown,
  files: ReadonlyMap<string, Uint8Array>,
  errors: BundleError[],
  points: number | undefined,
): CheckedGrader | undefined {
  if (!isRecord(value) || typeof value.type !== "string") return undefined;
  const { type, ...rest } = value;
  const grader = getGrader(type);
  if (!grader) {
    const known = graderTypes().sort().join(", ") || "none registered";
    errors.push({ file, path: "grader.type", message: `unknown grader type "${type}" (known types: ${known})` });
    return undefined;
  }
  const parsed = grader.configSchema.safeParse(rest);
  if (!parsed.success) {
    errors.push(...zodErrors(file, "grader", parsed.error.issues));
    return undefined;
  }
  let config = parsed.data;
  const before = errors.length;
  for (const name of grader.privateFiles?.(config) ?? []) {
    if (!files.has(name.replace(/^\.\//, ""))) {
      errors.push({
        file,
        path: fieldPath("grader", findValue(rest, name) ?? []),
        message: `file "${name}" named by the grader config is not in the problem folder`,
      });
    }
  }
  if (errors.length === before && grader.resolveConfig) {
    const resolved = grader.resolveConfig(config, files);
    if (!resolved.ok) {
      errors.push(...resolved.issues.map((i) => ({ file, path: fieldPath("grader", i.path), message: i.message })));
      return undefined;
    }
    config = resolved.config;
  }
  let placeholders: string[] | undefined;
  // A config that passes its schema but makes the grader throw would otherwise surface only
  // when the first student opens the problem.
  try {
    if (grader.params) placeholders = Object.keys(grader.params(config, CHECK_SEED));
    grader.answerFormat(config, CHECK_SEED);
    // A rubric that misgrades its own examples would misgrade students too.
    if (points !== undefined && errors.length === before) {
      for (const issue of grader.selfCheck?.(config, { points, privateData: files }) ?? []) {
        errors.push({ file, path: fieldPath("grader", issue.path), message: issue.message });
      }
    }
  } catch (e) {
    errors.push({ file, path: "grader", message: `the ${type} grader rejects this config: ${(e as Error).message}` });
  }
  return errors.length > before ? undefined : { type, config, placeholders };
}

/** Where in the raw config a string value sits, so a missing file points at its field. */
function findValue(value: unknown, target: string, keys: PropertyKey[] = []): PropertyKey[] | undefined {
  if (value === target) return keys;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const hit = findValue(v, target, [...keys, i]);
      if (hit) return hit;
    }
  } else if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) {
      const hit = findValue(v, target, [...keys, k]);
      if (hit) return hit;
    }
  }
  return undefined;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const fail = (file: string, path: string, message: string): ProblemResult => ({ ok: false, errors: [{ file, path, message }] });
