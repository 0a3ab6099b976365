import type { FastifyInstance } from "fastify";
import { AppError, validationFailed } from "../../shared/errors.ts";
import { parseFrozenTime } from "./core/frozen_time.ts";
import type { ClockService, TestClockState } from "./service.ts";

const testClockJson = (s: TestClockState) => ({
  test_clock: { frozen_time: s.frozenTime === null ? null : s.frozenTime.toISOString(), current_time: s.currentTime.toISOString() },
});

/** The test clock API; registered only with VALUEVERSE_TEST_CLOCK=on (otherwise the routes do not exist: 404). */
export function registerTestClockRoutes(app: FastifyInstance, clocks: ClockService): void {
  if (!clocks.enabled) return;

  app.get("/api/v1/test_clock", async (request) => testClockJson(await clocks.read(request.orgId)));

  app.put("/api/v1/test_clock", async (request) => {
    const body = request.body as { test_clock?: unknown } | null;
    const input = body !== null && typeof body === "object" ? body.test_clock : undefined;
    if (input === undefined || input === null) {
      throw new AppError("bad_request", "missing_parameter", 'the request body must be {"test_clock": {"frozen_time": "<ISO 8601>"}}', {
        test_clock: ["value_is_mandatory"],
      });
    }
    if (typeof input !== "object" || Array.isArray(input)) throw validationFailed({ test_clock: ["must_be_an_object"] });
    const parsed = parseFrozenTime((input as { frozen_time?: unknown }).frozen_time);
    if (!parsed.ok) throw validationFailed(parsed.errors, "invalid frozen_time");
    return testClockJson(await clocks.freeze(request.orgId, parsed.at));
  });
}
