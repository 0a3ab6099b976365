// Usage alerts: Lago's /subscriptions/:external_id/alerts (thresholds on a subscription's current or
// lifetime usage, or one metric's usage amount or units) and their evaluation in the background and
// on test clock moves, which records each crossing and sends alert.triggered.
export { AlertService, type AlertDeps, type AlertRun, type AlertServiceOptions, type AlertView } from "./service.ts";
export { registerAlertRoutes } from "./http.ts";
export { ALERT_TYPES, checkAlert, type Alert, type AlertThreshold, type AlertType } from "./core/alert.ts";
export { crossedThresholds, baselineOf, watchedValue, type CrossedThreshold, type UsageReading } from "./core/crossing.ts";
