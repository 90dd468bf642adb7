import { AppError } from "../errors.ts";
import type { Principal } from "./auth.ts";

/**
 * What a course-scoped token (an LTI session, an integration token) may call, checked once for every /v1 request
 * after authentication. Which course it may touch is memberRole's job (other courses answer 404); this decides
 * which routes. Unknown scopes allow nothing: a scope added later must be added here before it opens anything.
 */
const GRADES_READ: RegExp[] = [
  /^\/v1\/me$/,
  /^\/v1\/courses\/:courseId\/(grades|statistics|enrollments|assignments)(\/.*)?$/,
  /^\/v1\/assignments\/:assignmentId(\/(grades|statistics|events)(\/.*)?)?$/,
];

/** Minting or revoking tokens: a token limited to one course must not be able to make itself an unlimited one. */
const TOKEN_ADMIN = /^\/v1\/users\/:userId\/tokens(\/.*)?$/;

export class TokenScopeError extends AppError {
  constructor(message: string) {
    super(403, "TOKEN_SCOPE", message);
  }
}

export function enforceTokenScope(p: Principal, method: string, route: string | undefined): void {
  if (!p.courseId) return;
  const path = route ?? "";
  if (TOKEN_ADMIN.test(path)) throw new TokenScopeError("A course-scoped token cannot manage API tokens; use a personal token.");
  if (p.scope === null || p.scope === undefined) return;
  if (p.scope === "grades:read") {
    if ((method === "GET" || method === "HEAD") && GRADES_READ.some((r) => r.test(path))) return;
    throw new TokenScopeError(
      `A grades:read token may only read this course's grades, statistics, enrollments and assignments, not ${method} ${path}.`,
    );
  }
  throw new TokenScopeError(`This token's scope '${p.scope}' allows nothing here.`);
}
