/**
 * autocannon against one POST route, with the answers classified the way the issue counts them: 2xx, 409
 * SUBMISSION_CONTENDED, other 409s, 429 (and whether each carried Retry-After), other 4xx, 5xx, socket errors.
 */
import autocannon from "autocannon";

export interface LoadOptions {
  url: string;
  path: string;
  body: string;
  connections: number;
  /** Seconds; or `amount` requests in total. */
  duration?: number;
  amount?: number;
  /** Bearer tokens rotated across requests (one per request, round robin); none: no Authorization header. */
  tokens?: string[];
}

export interface LoadResult {
  connections: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  total: number;
  ok: number;
  contended409: number;
  other409: number;
  limited429: number;
  limited429WithRetryAfter: number;
  other4xx: number;
  /** 503 OVERLOADED: the API's load shedding (event-loop delay past its limit), not a failure. */
  overloaded503: number;
  server5xx: number;
  socketErrors: number;
  timeouts: number;
  durationS: number;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const counts = {
    ok: 0,
    contended409: 0,
    other409: 0,
    limited429: 0,
    limited429WithRetryAfter: 0,
    other4xx: 0,
    overloaded503: 0,
    server5xx: 0,
  };
  let next = 0;
  const tokens = o.tokens ?? [];
  const result = await autocannon({
    url: o.url,
    connections: o.connections,
    ...(o.amount ? { amount: o.amount } : { duration: o.duration ?? 10 }),
    timeout: 30,
    requests: [
      {
        method: "POST",
        path: o.path,
        headers: { "content-type": "application/json" },
        body: o.body,
        setupRequest: (req) =>
          tokens.length ? { ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` } } : req,
        onResponse: (status, body, _ctx, headers) => {
          if (status < 300) counts.ok++;
          else if (status === 409 && body.includes("SUBMISSION_CONTENDED")) counts.contended409++;
          else if (status === 409) counts.other409++;
          else if (status === 429) {
            counts.limited429++;
            if (headers?.["retry-after"] !== undefined) counts.limited429WithRetryAfter++;
          } else if (status === 503 && body.includes("OVERLOADED")) counts.overloaded503++;
          else if (status >= 500) counts.server5xx++;
          else counts.other4xx++;
        },
      },
    ],
  });
  return {
    connections: o.connections,
    reqPerSec: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    ...counts,
    socketErrors: result.errors - result.timeouts,
    timeouts: result.timeouts,
    durationS: result.duration,
  };
}

/** The error columns of a table row. */
export const errorCells = (r: LoadResult) => ({
  "409 contended": r.contended409,
  "409 other": r.other409,
  "429 (with Retry-After)": r.limited429 ? `${r.limited429} (${r.limited429WithRetryAfter})` : 0,
  "other 4xx": r.other4xx,
  "503 overloaded": r.overloaded503,
  "other 5xx": r.server5xx,
  "socket errors/timeouts": r.socketErrors + r.timeouts,
});
