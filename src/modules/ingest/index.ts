// Usage-event ingestion: validation, lifetime exactly-once identity, durable group commit with
// hourly rollups, and the events API (create, batch, list, get).
export { IngestService } from "./service.ts";
export { EventWriter, QueueFullError, type Outcome } from "./writer.ts";
export { Partitions } from "./store.ts";
export { registerEventRoutes } from "./http.ts";
