import { parseDocument } from "yaml";
import type { z } from "zod";
import type { BundleError } from "./types.ts";

type Key = PropertyKey;

/** `grader` + ["options", 2, "id"] → "grader.options[2].id". */
export function fieldPath(prefix: string, keys: readonly Key[]): string {
  let out = prefix;
  for (const k of keys) {
    if (typeof k === "number") out += `[${k}]`;
    else if (typeof k === "string" && /^[A-Za-z_$][\w$-]*$/.test(k)) out += out === "" ? k : `.${k}`;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

/**
 * One BundleError per zod issue. Unknown keys get one line each (the fix differs per key); a
 * failed union reports its closest branch, and a bad record key its reasons, instead of zod's
 * bare "Invalid input" / "Invalid key in record".
 */
export function zodErrors(file: string, prefix: string, issues: readonly z.core.$ZodIssue[], base: Key[] = []): BundleError[] {
  const out: BundleError[] = [];
  for (const issue of issues) {
    const keys = [...base, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      for (const k of issue.keys) out.push({ file, path: fieldPath(prefix, [...keys, k]), message: `unknown key "${k}"` });
    } else if (issue.code === "invalid_union" && issue.errors.length > 0) {
      const closest = [...issue.errors].sort((a, b) => a.length - b.length)[0]!;
      out.push(...zodErrors(file, prefix, closest, keys));
    } else if (issue.code === "invalid_key" && issue.issues.length > 0) {
      for (const sub of issue.issues) out.push({ file, path: fieldPath(prefix, keys), message: `key ${sub.message}` });
    } else {
      out.push({ file, path: fieldPath(prefix, keys), message: issue.message });
    }
  }
  return out;
}

export type YamlResult = { ok: true; value: unknown } | { ok: false; errors: BundleError[] };

export function parseYaml(file: string, bytes: Uint8Array): YamlResult {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, errors: [{ file, path: "", message: "not valid UTF-8 text" }] };
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const errors = doc.errors.map((e) => {
      const at = e.linePos?.[0];
      const what = e.message.split(" at line ")[0]!.split("\n")[0]!;
      const where = at ? ` at line ${at.line}, column ${at.col}` : "";
      return { file, path: "", message: `YAML syntax error${where}: ${what}` };
    });
    return { ok: false, errors };
  }
  try {
    // maxAliasCount guards against "billion laughs" alias expansion.
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (e) {
    return { ok: false, errors: [{ file, path: "", message: `YAML error: ${(e as Error).message}` }] };
  }
}
