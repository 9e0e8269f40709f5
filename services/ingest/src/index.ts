/**
 * @weft/ingest: the ingest role. Consumers of the services' message buses
 * (NATS JetStream, RabbitMQ, Redis Streams) that deliver the events they
 * carry through the notification delivery path, effectively once. See
 * `docs/ingest.md`.
 */
export { type Config, consumerName, IngestConfigError, layer, sources } from "./Ingest.ts"
export * as Consumer from "./Consumer.ts"
export * as Dedupe from "./Dedupe.ts"
export * as Envelope from "./Envelope.ts"
export * as IngestMetrics from "./IngestMetrics.ts"
export * as Pipeline from "./Pipeline.ts"
export * as Rules from "./Rules.ts"
export * as Source from "./Source.ts"
