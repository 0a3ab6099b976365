// One error type for the whole server. The HTTP layer maps `category` to Lago's status codes and
// bodies; services and stores only ever throw AppError (anything else is a bug and answers 500).
export type ErrorCategory =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "not_allowed"
  | "validation"
  | "payload_too_large"
  | "too_many_requests"
  | "unavailable";

/** Field name (or path such as `events[3].timestamp`) to the reasons it is wrong. */
export type FieldErrors = Record<string, string[]>;

export class AppError extends Error {
  constructor(
    readonly category: ErrorCategory,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const validationFailed = (details: Record<string, unknown>, message = "validation failed") =>
  new AppError("validation", "validation_errors", message, details);

export const notFound = (kind: string, id?: string) =>
  new AppError("not_found", `${kind}_not_found`, id === undefined ? `${kind} not found` : `${kind} ${id} does not exist`);

export const badRequest = (message: string, code = "bad_request") => new AppError("bad_request", code, message);

export const unauthorized = () => new AppError("unauthorized", "unauthorized", "Unauthorized");

export const STATUS: Record<ErrorCategory, { status: number; error: string }> = {
  bad_request: { status: 400, error: "Bad request" },
  unauthorized: { status: 401, error: "Unauthorized" },
  forbidden: { status: 403, error: "Forbidden" },
  not_found: { status: 404, error: "Not Found" },
  // Lago's `not_allowed_failure!`: the resource exists but the action does not apply to its state.
  not_allowed: { status: 405, error: "Method Not Allowed" },
  validation: { status: 422, error: "Unprocessable Entity" },
  payload_too_large: { status: 413, error: "Payload Too Large" },
  too_many_requests: { status: 429, error: "Too Many Requests" },
  unavailable: { status: 503, error: "Service Unavailable" },
};

/** Lago's error bodies: 401 `{status,error}`, 404 and 405 `{status,error,code}`, 422 adds `error_details`. */
export function errorBody(err: AppError): Record<string, unknown> {
  const { status, error } = STATUS[err.category];
  if (err.category === "unauthorized") return { status, error };
  if (err.category === "not_found" || err.category === "not_allowed") return { status, error, code: err.code };
  if (err.category === "validation") return { status, error, code: err.code, error_details: err.details ?? {} };
  return { status, error, code: err.code, message: err.message, ...(err.details ? { error_details: err.details } : {}) };
}
