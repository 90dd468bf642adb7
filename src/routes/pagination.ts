import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Page, PageArgs } from "../lib/keyset.ts";

/**
 * The HTTP side of every list (API.md: lists paginate): `?limit` (default 100, max 1000; 400 beyond) and `?cursor`
 * from the previous page, an RFC 8288 `Link: <…>; rel="next"` header while more remain, and a plain JSON array
 * as the body. Keyset pagination itself is src/lib/keyset.ts.
 */

export const MAX_LIMIT = 1000;

export const pageQuery = {
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_LIMIT)
    .default(100)
    .meta({ description: `Rows per page: 1–${MAX_LIMIT}, default 100. More remain while the answer has a Link rel="next" header.` }),
  cursor: z
    .string()
    .max(2000)
    .optional()
    .meta({ description: 'Opaque: where the previous page ended. Follow the Link rel="next" header rather than building it.' }),
};

/** The response header of a paged list, for the OpenAPI document. */
export const pageHeaders = {
  link: {
    description:
      'RFC 8288 `<…>; rel="next"`: the URL of the next page (same filters and limit, with a cursor), present while more rows remain.',
    schema: { type: "string" },
  },
};

/** Wraps a list's 200 schema so that the OpenAPI document also describes its Link header. */
export const pagedResponse = <T extends z.ZodType>(items: T) =>
  z.array(items).meta({ description: 'A page of rows. `Link: <…>; rel="next"` while more remain.', headers: pageHeaders });

/**
 * The next page's URL: this request's path and query, its filters first in their order, then `limit`, then `cursor`
 * (relative to this server, as RFC 8288 allows; clients resolve it against the URL they called).
 */
export function nextPageUrl(req: FastifyRequest, limit: number, next: string): string {
  const url = new URL(req.url, "http://x");
  const query = new URLSearchParams();
  for (const [k, v] of url.searchParams) if (k !== "limit" && k !== "cursor" && k !== "access_token") query.append(k, v);
  query.set("limit", String(limit));
  query.set("cursor", next);
  return `${url.pathname}?${query}`;
}

/** Sends a page: its rows as the array body, and the Link header when another page follows. */
export function sendPage<T>(req: FastifyRequest, reply: FastifyReply, args: PageArgs, page: Page<T>) {
  if (page.next) reply.header("link", `<${nextPageUrl(req, args.limit, page.next)}>; rel="next"`);
  return reply.send(page.items);
}
