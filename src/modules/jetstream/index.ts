// Decoupled ingestion through NATS JetStream (INGEST_MODE=jetstream): the API publishes validated
// events to a replicated stream and answers once it has them; `valueverse ingest-worker` processes
// commit them to PostgreSQL exactly once and record what they refuse as rejected events.
export { createJetstreamIngest, type JetstreamIngest } from "./api.ts";
export { IngestConsumer, type ConsumerOptions } from "./consumer.ts";
export { EventPublisher, type PublisherMetrics } from "./publisher.ts";
export { RejectedEventsService, type Rejection, type RejectedEventJson } from "./service.ts";
export { registerRejectedEventRoutes } from "./http.ts";
export { registerConsumerMetrics, registerLagGauges, registerPublisherMetrics, type ConsumerMetrics } from "./metrics.ts";
export { StreamSetupError, connectNats, ensureConsumer, ensureStream, readLag, subjectOf, withStartupRetry, type Lag } from "./nats.ts";
export { chunkEvents, decodeEvents, encodeEvents, identityDigest, lagoEventJson, messageId } from "./core/message.ts";
