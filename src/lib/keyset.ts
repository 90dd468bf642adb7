import { BadRequestError } from "../errors.ts";

/**
 * Keyset pagination, shared by every list (API.md: lists paginate). A page is read with `take: limit + 1` after the
 * last row's sort key, never with OFFSET, so page N costs what page 1 costs and rows inserted meanwhile neither
 * repeat nor skip a row of the walk. The sort must end in a unique field (usually `id`), so the order is total.
 * The cursor is opaque to clients: base64url JSON of the last row's sort key.
 */

export interface Page<T> {
  items: T[];
  /** The cursor of the next page; null on the last one. */
  next: string | null;
}

export interface PageArgs {
  limit: number;
  cursor?: string | undefined;
}

/** One sort field: its path through relations (e.g. `["user", "name"]`), direction, and how its value travels. */
export interface KeyField {
  path: readonly string[];
  dir: "asc" | "desc";
  type: "string" | "date" | "number";
}

export const asc = (path: string, type: KeyField["type"] = "string"): KeyField => ({ path: path.split("."), dir: "asc", type });
export const desc = (path: string, type: KeyField["type"] = "string"): KeyField => ({ path: path.split("."), dir: "desc", type });

export const encodeCursor = (key: readonly (string | number)[]) => Buffer.from(JSON.stringify(key)).toString("base64url");

const badCursor = () => new BadRequestError("BAD_CURSOR", "The cursor is not one this list gave out.");

/** The sort key a cursor carries, checked against the list's fields; 400 BAD_CURSOR for anything else. */
export function decodeCursor(cursor: string | undefined, fields: readonly KeyField[]): unknown[] | null {
  if (!cursor) return null;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw badCursor();
  }
  if (!Array.isArray(key) || key.length !== fields.length) throw badCursor();
  return key.map((v, i) => {
    const type = fields[i]!.type;
    if (type === "number" && typeof v === "number" && Number.isFinite(v)) return v;
    if (type === "string" && typeof v === "string") return v;
    if (type === "date" && typeof v === "string" && !Number.isNaN(Date.parse(v))) return new Date(v);
    throw badCursor();
  });
}

/** `{a: {b: leaf}}` for the path ["a", "b"]. */
const nest = (path: readonly string[], leaf: unknown): Record<string, unknown> =>
  path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), leaf) as Record<string, unknown>;

const valueAt = (row: unknown, path: readonly string[]): unknown =>
  path.reduce<unknown>((v, k) => (v as Record<string, unknown> | null | undefined)?.[k], row);

/**
 * The Prisma arguments of one page: `where` (the rows after the cursor: k1 > v1, or k1 = v1 and k2 > v2, …),
 * `orderBy` and `take`. W and O are the model's WhereInput and OrderByWithRelationInput.
 */
export function keysetArgs<W, O>(fields: readonly KeyField[], page: PageArgs): { where: W; orderBy: O[]; take: number } {
  const after = decodeCursor(page.cursor, fields);
  const orderBy = fields.map((f) => nest(f.path, f.dir)) as O[];
  const take = page.limit + 1;
  if (!after) return { where: {} as W, orderBy, take };
  const OR = fields.map((f, i) => ({
    AND: [
      ...fields.slice(0, i).map((g, j) => nest(g.path, { equals: after[j] })),
      nest(f.path, { [f.dir === "asc" ? "gt" : "lt"]: after[i] }),
    ],
  }));
  return { where: { OR } as W, orderBy, take };
}

/** Cuts the extra row read by `take: limit + 1` and makes the next page's cursor from the last row kept. */
export function toPage<R, T>(rows: R[], fields: readonly KeyField[], page: PageArgs, view: (row: R) => T): Page<T> {
  const kept = rows.slice(0, page.limit);
  const last = kept.at(-1);
  const next =
    rows.length > page.limit && last !== undefined
      ? encodeCursor(
          fields.map((f) => {
            const v = valueAt(last, f.path);
            return v instanceof Date ? v.toISOString() : (v as string | number);
          }),
        )
      : null;
  return { items: kept.map(view), next };
}

/** Pages a list that is computed rather than read (a handful of rows at most, e.g. signing keys) by the same rules. */
export function pageOf<T>(rows: T[], fields: readonly KeyField[], page: PageArgs): Page<T> {
  const after = decodeCursor(page.cursor, fields);
  const cmp = (a: unknown, b: unknown) =>
    a instanceof Date && b instanceof Date ? a.getTime() - b.getTime() : a! < b! ? -1 : a! > b! ? 1 : 0;
  const rest = after
    ? rows.filter((r) => {
        for (const [i, f] of fields.entries()) {
          const c = cmp(valueAt(r, f.path), after[i]);
          if (c !== 0) return f.dir === "asc" ? c > 0 : c < 0;
        }
        return false;
      })
    : rows;
  return toPage(rest.slice(0, page.limit + 1), fields, page, (r) => r);
}
