import { AppError } from "../errors.ts";

/**
 * A refused LTI message: the code names the check that failed (LTI_BAD_SIGNATURE, LTI_NONCE_REPLAYED, …) so an LMS
 * admin reading the page, or a test, knows exactly which rule the platform's message broke.
 */
export class LtiError extends AppError {
  constructor(code: string, message: string, status = 400, details?: unknown) {
    super(status, code, message, details);
  }
}
