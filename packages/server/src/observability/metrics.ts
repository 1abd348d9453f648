// Prometheus metrics, one registry per app (tests build several apps in one process).
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

export interface Metrics {
  registry: Registry;
  requests: Counter<"method" | "route" | "status" | "code">;
  duration: Histogram<"method" | "route">;
  signatures: Counter<"kind">;
  sideEffectFlushes: Counter<"result">;
  /** Webhook delivery attempts by result: delivered, retry_scheduled, failed (gave up). */
  webhookDeliveries: Counter<"result">;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "licensekit_" });
  return {
    registry,
    requests: new Counter({
      name: "licensekit_http_requests_total",
      help: "HTTP requests by route template, status and error code (\"none\" on success)",
      labelNames: ["method", "route", "status", "code"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "licensekit_http_request_duration_seconds",
      help: "HTTP request latency by route template",
      labelNames: ["method", "route"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    signatures: new Counter({
      name: "licensekit_signatures_total",
      help: "Ed25519 signatures made, by kind (data or error)",
      labelNames: ["kind"],
      registers: [registry],
    }),
    sideEffectFlushes: new Counter({
      name: "licensekit_side_effect_flushes_total",
      help: "Batched last-seen/last-used flushes by result",
      labelNames: ["result"],
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: "licensekit_webhook_deliveries_total",
      help: "Webhook delivery attempts by result (delivered, retry_scheduled, failed)",
      labelNames: ["result"],
      registers: [registry],
    }),
  };
}
