/**
 * Domain errors: services throw these, and the one Fastify error handler (app.ts) maps
 * them to `{ error: { code, message, details? } }` with their status.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends AppError {
  constructor(code: string, message: string, details?: unknown) {
    super(400, code, message, details);
  }
}

export class UnauthorizedError extends AppError {
  constructor(code = "UNAUTHORIZED", message = "Send a valid token as `Authorization: Bearer <token>`.") {
    super(401, code, message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super(403, "FORBIDDEN", message);
  }
}

/** Also used for what exists but the caller may not know about (never reveal across courses). */
export class NotFoundError extends AppError {
  constructor(what: string, id?: string) {
    super(404, "NOT_FOUND", id === undefined ? `${what} not found.` : `${what} '${id}' not found.`);
  }
}

export class ConflictError extends AppError {
  constructor(code: string, message: string, details?: unknown) {
    super(409, code, message, details);
  }
}

export class UnprocessableError extends AppError {
  constructor(code: string, message: string, details?: unknown) {
    super(422, code, message, details);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string) {
    super(413, "PAYLOAD_TOO_LARGE", message);
  }
}

export class DependencyError extends AppError {
  constructor(dependency: string, message: string) {
    super(503, "DEPENDENCY_UNAVAILABLE", message, { dependency });
  }
}
