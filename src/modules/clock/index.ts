// The server's clock and per-organization test clocks (VALUEVERSE_TEST_CLOCK=on): freezing and
// moving an organization's "now", and the registry of work a clock move makes due.
export { ClockService, REFRESH_MS, type AdvanceListener, type ClockServiceOptions, type TestClockState } from "./service.ts";
export { registerTestClockRoutes } from "./http.ts";
export { parseFrozenTime } from "./core/frozen_time.ts";
