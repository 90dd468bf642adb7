import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from "fastify-type-provider-zod";
import { AppError } from "./errors.ts";
import { isDatabaseUnavailable } from "./lib/prisma-errors.ts";

/** Fastify and plugin errors a client causes, with the code and advice we answer with. */
const FRAMEWORK_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, "PAYLOAD_TOO_LARGE", "The request body is larger than this server accepts."],
  FST_REQ_FILE_TOO_LARGE: [413, "PAYLOAD_TOO_LARGE", "The uploaded file is larger than this server accepts."],
  FST_FILES_LIMIT: [413, "PAYLOAD_TOO_LARGE", "Send exactly one file."],
  FST_PARTS_LIMIT: [413, "PAYLOAD_TOO_LARGE", "Too many multipart parts."],
  FST_FIELDS_LIMIT: [413, "PAYLOAD_TOO_LARGE", "Too many multipart fields."],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [
    415,
    "UNSUPPORTED_MEDIA_TYPE",
    "Unsupported Content-Type; send application/json (or multipart/form-data for uploads).",
  ],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, "UNSUPPORTED_MEDIA_TYPE", "This route takes multipart/form-data."],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, "MALFORMED_JSON", "The body is not valid JSON."],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, "EMPTY_BODY", "Content-Type is application/json but the body is empty."],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, "BAD_CONTENT_LENGTH", "Content-Length does not match the body."],
  FST_PROTO_VIOLATION: [400, "BAD_REQUEST", "A field name is not allowed."],
  FST_MP_PREMATURE_CLOSE: [400, "BAD_REQUEST", "The upload was cut off before it finished."],
};

const send = (status: number, code: string, message: string, details?: unknown) => ({
  status,
  body: { error: { code, message, ...(details === undefined ? {} : { details }) } },
});

const MULTIPART_ERRORS =
  /^(Unexpected end of (multipart data|form)|Multipart: Boundary not found|Malformed part header|(Part|Preamble) terminated early)/;

/** Postgres refuses text with NUL bytes (22021): the client sent it, so it is a 400, wherever it reached. */
function isUnstorableText(err: unknown): boolean {
  const cause = ((err as { meta?: { driverAdapterError?: { cause?: { code?: string } } } })?.meta?.driverAdapterError?.cause ?? {}) as {
    code?: string;
  };
  return cause.code === "22021" || /invalid byte sequence for encoding "UTF8": 0x00/.test(String((err as Error)?.message));
}

function isDependencyDown(err: unknown): string | null {
  if (isDatabaseUnavailable(err)) return "postgres";
  const msg = String((err as Error)?.message ?? "");
  if (/ECONNREFUSED|Connection is closed|connect ETIMEDOUT|max retries per request/i.test(msg))
    return /6379|redis|retries per request/i.test(msg) ? "redis" : "postgres";
  return null;
}

function classify(err: FastifyError) {
  if (err instanceof AppError) return send(err.status, err.code, err.message, err.details);
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? "request";
    const details = err.validation.map((v) => ({
      path: [where, ...String(v.instancePath).split("/").filter(Boolean)].join("."),
      message: v.message,
    }));
    return send(400, "VALIDATION_ERROR", `Invalid ${where}: ${details.map((d) => `${d.path} ${d.message}`).join("; ")}`, details);
  }
  const known = err.code ? FRAMEWORK_ERRORS[err.code] : undefined;
  if (known) return send(...known);
  if (err.statusCode === 429) return send(429, "RATE_LIMITED", err.message);
  // The multipart parser (busboy) throws plain Errors for bodies that end early or lack their boundary.
  if (MULTIPART_ERRORS.test(err.message ?? "") && !err.code)
    return send(400, "MALFORMED_MULTIPART", `The multipart/form-data body is malformed: ${err.message}.`);
  if (isUnstorableText(err)) return send(400, "INVALID_TEXT", "Text fields and ids may not contain NUL (\\u0000) characters.");
  const dependency = isDependencyDown(err);
  if (dependency) return send(503, "DEPENDENCY_UNAVAILABLE", `${dependency} is unreachable; try again shortly.`, { dependency });
  if (isResponseSerializationError(err)) return send(500, "INTERNAL", "The server built an invalid response.");
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return send(err.statusCode, "BAD_REQUEST", err.message);
  return send(500, "INTERNAL", "Internal server error; it has been logged.");
}

/** Errors the router raises before any route (and so before the error handler), in the same shape. */
export function frameworkErrors(err: FastifyError, _req: unknown, reply: FastifyReply) {
  const [status, code, message] =
    err.code === "FST_ERR_MAX_PARAM_LENGTH"
      ? [414, "URL_TOO_LONG", "A path parameter is longer than this server accepts (100 characters)."]
      : err.code === "FST_ERR_BAD_URL"
        ? [400, "BAD_URL", "The URL is not valid (check its percent-encoding)."]
        : [400, "BAD_REQUEST", err.message];
  return reply.status(status).send({ error: { code, message } });
}

/** The one place where errors become HTTP: `{ error: { code, message, details? } }`, no stack traces. */
export function installErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const { status, body } = classify(err);
    if (status >= 500) req.log.error({ err }, "request failed");
    // A dependency outage is temporary: tell clients when to retry instead of letting them hammer us.
    if (status === 503 && !reply.hasHeader("retry-after")) reply.header("retry-after", "5");
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ error: { code: "ROUTE_NOT_FOUND", message: `No route ${req.method} ${req.url.split("?")[0]}; see /docs.` } }),
  );
}
