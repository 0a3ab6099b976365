import { describe, expect, it } from "vitest";
import { AppError, STATUS, badRequest, errorBody, notFound, unauthorized, validationFailed, type ErrorCategory } from "../../src/shared/errors.ts";

describe("errorBody: Lago's error bodies", () => {
  it("401 is exactly {status, error}", () => {
    expect(errorBody(unauthorized())).toEqual({ status: 401, error: "Unauthorized" });
  });

  it("404 is {status, error, code} with `<kind>_not_found`", () => {
    expect(errorBody(notFound("event", "tx-1"))).toEqual({ status: 404, error: "Not Found", code: "event_not_found" });
  });

  it("422 is {status, error, code, error_details} with every field's reasons", () => {
    const err = validationFailed({ transaction_id: ["value_already_exist"], code: ["value_is_mandatory"] });
    expect(errorBody(err)).toEqual({
      status: 422,
      error: "Unprocessable Entity",
      code: "validation_errors",
      error_details: { transaction_id: ["value_already_exist"], code: ["value_is_mandatory"] },
    });
  });

  it("other categories carry the code and a message, plus details when there are any", () => {
    expect(errorBody(badRequest("body must be JSON", "invalid_json"))).toEqual({
      status: 400,
      error: "Bad request",
      code: "invalid_json",
      message: "body must be JSON",
    });
    const tooMany = new AppError("payload_too_large", "too_many_events", "max 10", { events: ["too_many_events (max 10)"] });
    expect(errorBody(tooMany)).toEqual({
      status: 413,
      error: "Payload Too Large",
      code: "too_many_events",
      message: "max 10",
      error_details: { events: ["too_many_events (max 10)"] },
    });
  });
});

describe("error categories", () => {
  it.each([
    ["bad_request", 400],
    ["unauthorized", 401],
    ["forbidden", 403],
    ["not_found", 404],
    ["payload_too_large", 413],
    ["validation", 422],
    ["too_many_requests", 429],
    ["unavailable", 503],
  ] as [ErrorCategory, number][])("%s answers %d", (category, status) => {
    expect(STATUS[category].status).toBe(status);
    expect(errorBody(new AppError(category, "c", "m")).status).toBe(status);
  });

  it("an error keeps the headers it asks for (Retry-After)", () => {
    const err = new AppError("too_many_requests", "ingest_queue_full", "full", undefined, { "retry-after": "1" });
    expect(err.headers).toEqual({ "retry-after": "1" });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("AppError");
  });

  it("notFound without an id still names the kind", () => {
    expect(notFound("organization").message).toBe("organization not found");
    expect(notFound("organization", "x").message).toBe("organization x does not exist");
  });
});
