// Prometheus metrics, one registry per app (tests build several apps in one process).
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { Clock } from "../clock.js";
import type { RuntimeCache } from "../cache/runtime-cache.js";
import type { Store } from "../store/db.js";
import { type DatabaseGauges, registerDatabaseGauges } from "./db-gauges.js";
import { BatchedCounter, type CountCell, LocalHistogram } from "./local-metrics.js";

export interface Metrics {
  registry: Registry;
  // Moved on every request: plain numbers until a scrape (observability/local-metrics.ts).
  requests: BatchedCounter<"method" | "route" | "status" | "code">;
  duration: LocalHistogram<"method" | "route">;
  /** Ed25519 signatures made, by kind. */
  signatures: { data: CountCell; error: CountCell };
  sideEffectFlushes: Counter<"result">;
  /** Webhook delivery attempts by result: delivered, retry_scheduled, failed (gave up). */
  webhookDeliveries: Counter<"result">;
  // The operations catalogue (docs/operations.md); code is the error code, "none" on success.
  runtimeRequests: BatchedCounter<"operation" | "code">;
  managementRequests: BatchedCounter<"operation" | "code">;
  requestDuration: LocalHistogram<"surface">;
  scopeDenials: Counter<"scope">;
  idempotencyConflicts: Counter<"code">;
  idempotencyReplays: Counter;
  signingDuration: LocalHistogram;
  /** Gauges read from the database at scrape time (and their error counter); null without a store. */
  database: DatabaseGauges | null;
  /** Metric children per kind of answer, made on first use (observability/request-observer.ts). */
  answers: Map<string, unknown>;
}

/** Where scrape-time gauges read from; without it they are not registered. */
export interface MetricSources {
  store: Store;
  clock: Clock;
  runtimeCache?: RuntimeCache;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createMetrics(sources?: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "licensekit_" });
  const signatures = new BatchedCounter(registry, "licensekit_signatures_total", "Ed25519 signatures made, by kind (data or error)", ["kind"]);
  if (sources) registerCheckpointMetrics(registry, sources.store);
  if (sources) registerLockWaitMetrics(registry, sources.store);
  if (sources) registerBatchWriterMetrics(registry, sources.store);
  if (sources?.runtimeCache) registerRuntimeCacheMetrics(registry, sources.runtimeCache);
  return {
    registry,
    requests: new BatchedCounter(registry, "licensekit_http_requests_total", 'HTTP requests by route template, status and error code ("none" on success)', [
      "method",
      "route",
      "status",
      "code",
    ]),
    duration: new LocalHistogram("licensekit_http_request_duration_seconds", "HTTP request latency by route template", LATENCY_BUCKETS, registry),
    signatures: { data: signatures.cell({ kind: "data" }), error: signatures.cell({ kind: "error" }) },
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
    runtimeRequests: new BatchedCounter(
      registry,
      "licensekit_runtime_requests_total",
      'Runtime API answers by operationId and error code ("none" on success, "replay" for an idempotent replay)',
      ["operation", "code"],
    ),
    managementRequests: new BatchedCounter(
      registry,
      "licensekit_management_requests_total",
      'Management API answers by operationId and error code ("none" on success, "replay" for an idempotent replay)',
      ["operation", "code"],
    ),
    requestDuration: new LocalHistogram("licensekit_request_duration_seconds", "Request latency by surface (runtime, management, system)", LATENCY_BUCKETS, registry),
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
    signingDuration: new LocalHistogram(
      "licensekit_signing_duration_seconds",
      "Time to make one Ed25519 signature (runtime answers, signed errors)",
      [0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01],
      registry,
    ),
    database: sources ? registerDatabaseGauges(registry, sources.store, sources.clock) : null,
    answers: new Map(),
  };
}

/** A gauge set at scrape time from `read`. */
function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/**
 * A counter whose totals are kept elsewhere (a component's own statistics) and read at scrape time:
 * one series when `read` gives a number, else one per value of `label`.
 */
function scrapedCounter(registry: Registry, name: string, help: string, read: () => number | Record<string, number>, label?: string): void {
  new Counter({
    name,
    help,
    labelNames: label ? [label] : [],
    registers: [registry],
    collect() {
      const totals = read();
      this.reset();
      if (typeof totals === "number") this.inc(totals);
      else for (const [value, n] of Object.entries(totals)) this.inc({ [label!]: value }, n);
    },
  });
}

/**
 * The background WAL checkpoints of a SQLite file (store/wal-checkpointer.ts), read from its
 * statistics at scrape time; zero on PostgreSQL and when the thread is off.
 */
function registerCheckpointMetrics(registry: Registry, store: Store): void {
  scrapedCounter(
    registry,
    "licensekit_sqlite_wal_checkpoints_total",
    "Background WAL checkpoints of the SQLite file by result (ok, busy: another connection was checkpointing, failed)",
    () => {
      const s = store.checkpointer?.stats;
      return { ok: s ? s.runs - s.busy - s.failures : 0, busy: s?.busy ?? 0, failed: s?.failures ?? 0 };
    },
    "result",
  );
  scrapedGauge(
    registry,
    "licensekit_sqlite_wal_pages",
    "Pages in the SQLite write-ahead log at the last background checkpoint (what the thread found to copy)",
    () => store.checkpointer?.stats.lastLog ?? 0,
  );
}

/**
 * The batched stamps and counts written by a SQLite file's batch thread (store/sqlite-batch-writer.ts),
 * read from its statistics at scrape time; zero on PostgreSQL.
 */
function registerBatchWriterMetrics(registry: Registry, store: Store): void {
  scrapedCounter(
    registry,
    "licensekit_sqlite_batch_chunks_total",
    "Chunks of batched stamps and call counts written by the SQLite batch thread, by result (committed, failed: put back for the next flush)",
    () => ({ committed: store.batchWriter?.stats.committed ?? 0, failed: store.batchWriter?.stats.failed ?? 0 }),
    "result",
  );
}

/**
 * SQLite writes that found another process's write lock taken (store/sqlite-driver.ts,
 * `untilUnlocked`), read from the connection's counters at scrape time; zero on PostgreSQL.
 */
function registerLockWaitMetrics(registry: Registry, store: Store): void {
  scrapedCounter(
    registry,
    "licensekit_sqlite_lock_waits_total",
    "SQLite writes that found another process's write lock taken (serve --workers, a CLI command, a second server), by outcome: acquired after waiting, or timed_out (answered 503)",
    () => ({ acquired: store.lockWaits?.acquired ?? 0, timed_out: store.lockWaits?.timeouts ?? 0 }),
    "outcome",
  );
  scrapedCounter(
    registry,
    "licensekit_sqlite_lock_retries_total",
    "Attempts a waiting SQLite write made again while another process held the write lock",
    () => store.lockWaits?.retries ?? 0,
  );
}

/** The validate/check runtime cache (cache/runtime-cache.ts): its fill against its bounds, and how often it answered. */
function registerRuntimeCacheMetrics(registry: Registry, cache: RuntimeCache): void {
  scrapedGauge(registry, "licensekit_runtime_cache_licenses", "Licenses whose runtime state this process holds", () => cache.size);
  scrapedGauge(registry, "licensekit_runtime_cache_bytes", "Estimated heap bytes of the runtime cache", () => cache.bytes);
  scrapedGauge(registry, "licensekit_runtime_cache_budget_bytes", "The runtime cache's heap budget (LICENSEKIT_RUNTIME_CACHE_MB)", () => cache.budgetBytes);
  scrapedCounter(
    registry,
    "licensekit_runtime_cache_lookups_total",
    "License lookups of validate/check by result: hit (no database read) or miss",
    () => ({ hit: cache.stats.hits, miss: cache.stats.misses }),
    "result",
  );
}
