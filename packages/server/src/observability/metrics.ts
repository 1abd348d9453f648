// Prometheus metrics, one registry per app (tests build several apps in one process).
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { Clock } from "../clock.js";
import type { Store } from "../store/db.js";
import { type DatabaseGauges, registerDatabaseGauges } from "./db-gauges.js";

export interface Metrics {
  registry: Registry;
  requests: Counter<"method" | "route" | "status" | "code">;
  duration: Histogram<"method" | "route">;
  signatures: Counter<"kind">;
  sideEffectFlushes: Counter<"result">;
  /** Webhook delivery attempts by result: delivered, retry_scheduled, failed (gave up). */
  webhookDeliveries: Counter<"result">;
  // The operations catalogue (docs/operations.md); code is the error code, "none" on success.
  runtimeRequests: Counter<"operation" | "code">;
  managementRequests: Counter<"operation" | "code">;
  requestDuration: Histogram<"surface">;
  scopeDenials: Counter<"scope">;
  idempotencyConflicts: Counter<"code">;
  idempotencyReplays: Counter;
  signingDuration: Histogram;
  /** Gauges read from the database at scrape time (and their error counter); null without a store. */
  database: DatabaseGauges | null;
  /** Metric children per kind of answer, made on first use (observability/request-observer.ts). */
  answers: Map<string, unknown>;
}

/** Where scrape-time gauges read from; without it they are not registered. */
export interface MetricSources {
  store: Store;
  clock: Clock;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createMetrics(sources?: MetricSources): Metrics {
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
    runtimeRequests: new Counter({
      name: "licensekit_runtime_requests_total",
      help: 'Runtime API answers by operationId and error code ("none" on success, "replay" for an idempotent replay)',
      labelNames: ["operation", "code"],
      registers: [registry],
    }),
    managementRequests: new Counter({
      name: "licensekit_management_requests_total",
      help: 'Management API answers by operationId and error code ("none" on success, "replay" for an idempotent replay)',
      labelNames: ["operation", "code"],
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: "licensekit_request_duration_seconds",
      help: "Request latency by surface (runtime, management, system)",
      labelNames: ["surface"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    scopeDenials: new Counter({
      name: "licensekit_scope_denials_total",
      help: "403 TOKEN_SCOPE_DENIED answers by the scope the route requires",
      labelNames: ["scope"],
      registers: [registry],
    }),
    idempotencyConflicts: new Counter({
      name: "licensekit_idempotency_conflicts_total",
      help: "409 answers to a reused Idempotency-Key, by code (IDEMPOTENCY_CONFLICT, IDEMPOTENCY_IN_PROGRESS)",
      labelNames: ["code"],
      registers: [registry],
    }),
    idempotencyReplays: new Counter({
      name: "licensekit_idempotency_replays_total",
      help: "Stored answers replayed for a repeated Idempotency-Key (Idempotent-Replayed: true)",
      registers: [registry],
    }),
    signingDuration: new Histogram({
      name: "licensekit_signing_duration_seconds",
      help: "Time to make one Ed25519 signature (runtime answers, signed errors)",
      buckets: [0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01],
      registers: [registry],
    }),
    database: sources ? registerDatabaseGauges(registry, sources.store, sources.clock) : null,
    answers: new Map(),
  };
}
