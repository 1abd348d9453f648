// Every setting the server reads, from the environment, validated once at start.
// A bad value throws ConfigError naming the variable; main.ts prints it on one line and exits non-zero.
import path from "node:path";
import v8 from "node:v8";
import { parseCidr } from "./http/cidr.js";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** How long a SQLite write waits for another process's write lock by default before it is answered 503. */
export const SQLITE_LOCK_WAIT_MS = 5000;

export type DatabaseConfig =
  | {
      engine: "sqlite";
      url: string;
      file: string;
      /** How long a write waits for another process's write lock before it fails busy (503); SQLITE_LOCK_WAIT_MS when unset. */
      lockWaitMs?: number;
    }
  | { engine: "postgres"; url: string; poolSize: number };

export interface Config {
  database: DatabaseConfig;
  host: string;
  port: number;
  /** 32-byte master key; undefined means "use (or create) the key file in dataDir". */
  masterKey: Buffer | undefined;
  dataDir: string;
  bootstrapToken: string | undefined;
  logLevel: LogLevel;
  /** IPs or CIDRs of proxies whose X-Forwarded-For is believed. Empty: trust none. */
  trustedProxies: string[];
  bodyLimitBytes: number;
  /** A request (headers and body) must arrive within this; a stalled or trickling one is answered 400 BAD_REQUEST and its connection closed. */
  requestTimeoutMs: number;
  idempotencyRetentionHours: number;
  keyRefreshSeconds: number;
  /** SQLite file: how often a background thread checkpoints the WAL (store/wal-checkpointer.ts); 0 leaves it to the commits. */
  sqliteCheckpointMs: number;
  sideEffectFlushMs: number;
  /** Lets webhook endpoint URLs point at loopback, private and link-local addresses (D6). */
  webhookAllowPrivate: boolean;
  /** The webhook delivery worker (D6, jobs/webhook-delivery.ts). */
  webhookDelivery: WebhookDeliveryConfig;
  /** Most table rows a PDF report export renders; a larger snapshot's PDF export fails (JSON/CSV have no limit). */
  exportPdfMaxRows: number;
  rateLimits: RateLimitConfig;
  /** Worker processes of `serve` (node:cluster); 1 serves from the started process itself. */
  workers: number;
  /** The validate/check state cache (cache/runtime-cache.ts) and its change feed (jobs/runtime-invalidation.ts). */
  runtimeCache: { size: number; budgetBytes: number; pollMs: number };
  /** SIGTERM/SIGINT: in-flight requests and webhook attempts get this long (less the flush margin) to finish. */
  shutdownTimeoutMs: number;
}

/** D10 limits; 0 turns a limit off. */
export interface RateLimitConfig {
  runtimePerSecond: number;
  runtimeBurst: number;
  authFailuresPerMinute: number;
  managementPerSecond: number;
  /** Where buckets live: this process's memory, or the database (shared by every process on it). */
  store: "memory" | "database";
}

/** Webhook delivery worker settings (D6); tests shorten the timings. */
export interface WebhookDeliveryConfig {
  /** Deliveries one process sends at the same time. */
  concurrency: number;
  /** How often a process looks for due deliveries. */
  pollMs: number;
  /** The delay before the first retry; later ones grow from it (see jobs/webhook-delivery.ts). */
  backoffBaseMs: number;
  /** One attempt (DNS, connect, answer) must finish within this. */
  timeoutMs: number;
}

export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
    this.name = "ConfigError";
  }
}

/** One row per setting: the name, its default, and what it does. README's table mirrors this list. */
export const SETTINGS = [
  ["LICENSEKIT_DATABASE_URL", "sqlite:./data/licensekit.db", "sqlite:<file path> (embedded, WAL) or postgres://user@host:port/db"],
  ["LICENSEKIT_HOST", "127.0.0.1", "address to listen on"],
  ["LICENSEKIT_PORT", "8080", "TCP port to listen on (0 picks a free one)"],
  ["LICENSEKIT_MASTER_KEY", "(key file)", "32 bytes as 64 hex or base64 characters; encrypts signing keys and keys credential hashes. Unset: <data dir>/master.key is created (mode 0600) on first start"],
  ["LICENSEKIT_DATA_DIR", "directory of the SQLite file, else ./data", "where the master key file lives"],
  ["LICENSEKIT_BOOTSTRAP_TOKEN", "(generated)", "admin token created on first start of an empty database (lkm_ + 20..200 base62 characters); otherwise one is generated and printed once"],
  ["LICENSEKIT_LOG_LEVEL", "info", "fatal, error, warn, info, debug, trace or silent"],
  ["LICENSEKIT_TRUSTED_PROXIES", "(none)", "comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For is trusted"],
  ["LICENSEKIT_BODY_LIMIT_BYTES", "262144", "largest accepted request body; larger is 413 PAYLOAD_TOO_LARGE"],
  ["LICENSEKIT_REQUEST_TIMEOUT_MS", "30000", "a request's headers and body must arrive within this (100..600000); a client that stalls or trickles gets 400 BAD_REQUEST and its connection is closed"],
  ["LICENSEKIT_IDEMPOTENCY_RETENTION_HOURS", "24", "how long idempotent responses are kept for replay"],
  ["LICENSEKIT_DB_POOL_SIZE", "10", "PostgreSQL connections per process"],
  ["LICENSEKIT_KEY_REFRESH_SECONDS", "10", "how often a process re-reads the active signing key (picks up `keys rotate` from another process)"],
  ["LICENSEKIT_SIDE_EFFECT_FLUSH_MS", "2000", "how often batched last-seen stamps are written"],
  ["LICENSEKIT_WEBHOOK_ALLOW_PRIVATE", "false", "true lets webhook endpoint URLs name localhost or loopback, private and link-local addresses; otherwise they are refused (422)"],
  ["LICENSEKIT_WEBHOOK_CONCURRENCY", "4", "webhook deliveries one process sends at the same time (1..64)"],
  ["LICENSEKIT_WEBHOOK_POLL_MS", "1000", "how often a process looks for due webhook deliveries (10..600000)"],
  ["LICENSEKIT_WEBHOOK_BACKOFF_BASE_MS", "10000", "delay before the first webhook retry; each later one is 3 times the previous, at most 1800 times this (5 h by default)"],
  ["LICENSEKIT_WEBHOOK_TIMEOUT_MS", "10000", "one webhook attempt (DNS, connect, answer) must finish within this (1000..20000); slower is a failed attempt"],
  ["LICENSEKIT_EXPORT_PDF_MAX_ROWS", "10000", "most table rows a PDF report export renders (1..100000); a PDF export of a larger snapshot is stored as failed, JSON and CSV exports have no such limit"],
  ["LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND", "20", "runtime calls per second per license (token bucket); 0 turns the limit off"],
  ["LICENSEKIT_RATE_LIMIT_RUNTIME_BURST", "twice the per-second rate (40)", "most runtime calls one license may make at once before the per-second rate applies"],
  ["LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "30", "failed authentications (401) per minute per client IP, on management and runtime routes; past it every attempt from that IP is 429 until the bucket refills; 0 turns the limit off"],
  ["LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND", "50", "management calls per second per token (burst of the same size); 0 turns the limit off"],
  ["LICENSEKIT_RATE_LIMIT_STORE", "memory on SQLite with one worker, else database", "memory (this process only) or database (the rate_limit_buckets table, shared by every process on the database)"],
  ["LICENSEKIT_SHUTDOWN_TIMEOUT_MS", "10000", "on SIGTERM/SIGINT: stop accepting, let in-flight requests and webhook attempts finish, flush batched counters, close the database and exit 0 within this (1000..600000); past it the process exits 1"],
  ["LICENSEKIT_RUNTIME_CACHE_SIZE", "10000000", "licenses whose runtime state (license, policy, features, devices) each process keeps in memory for validate/check at most (0..10000000); 0 turns the cache off. Changes reach every process within 1 s"],
  ["LICENSEKIT_RUNTIME_CACHE_MB", "auto", "heap the runtime cache may take, estimated (1..1048576 MiB); auto: half the V8 heap limit (`node --max-old-space-size`), about two million licenses with a device and a feature each on a 4 GiB heap. Least recently used licenses are dropped first"],
  ["LICENSEKIT_RUNTIME_CHANGES_POLL_MS", "200", "how often a process reads the runtime change feed (10..500): how changes arrive on SQLite, the safety net beside LISTEN/NOTIFY on PostgreSQL"],
  ["LICENSEKIT_SQLITE_CHECKPOINT_MS", "200", "SQLite file only: a background thread copies the write-ahead log into the database file this often (0..60000), instead of the commit that fills it doing so on the serving thread; 0 turns the thread off"],
  ["LICENSEKIT_SQLITE_LOCK_WAIT_MS", "5000", "SQLite only: how long a write waits for another process's write lock (`--workers`, a CLI command, a second server on the file) before it is answered 503 with Retry-After (0..60000); the process keeps serving other requests while it waits"],
  ["LICENSEKIT_WORKERS", "1", "worker processes `serve` starts (1..64, node:cluster, sharing one port); `serve --workers N` overrides it. 1 serves from the started process itself"],
] as const;

type Env = Record<string, string | undefined>;

function intSetting(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** LICENSEKIT_RUNTIME_CACHE_MB in bytes; auto (the default) is half this process's V8 heap limit. */
function cacheBudgetBytes(env: Env): number {
  const raw = (env.LICENSEKIT_RUNTIME_CACHE_MB ?? "").trim().toLowerCase();
  if (raw === "" || raw === "auto") return Math.floor(v8.getHeapStatistics().heap_size_limit / 2);
  return intSetting(env, "LICENSEKIT_RUNTIME_CACHE_MB", 0, 1, 1_048_576) * 2 ** 20;
}

function boolSetting(env: Env, name: string, def: boolean): boolean {
  const raw = (env[name] ?? "").trim().toLowerCase();
  if (raw === "") return def;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(name, `must be true or false, got "${env[name]}"`);
}

function parseDatabase(env: Env): DatabaseConfig {
  const name = "LICENSEKIT_DATABASE_URL";
  const url = (env[name] ?? "").trim() || "sqlite:./data/licensekit.db";
  if (url.startsWith("sqlite:")) {
    let file = url.slice("sqlite:".length);
    if (file.startsWith("//")) file = file.slice(2);
    if (file === "") throw new ConfigError(name, "sqlite: URL needs a file path, e.g. sqlite:./data/licensekit.db");
    return { engine: "sqlite", url, file: file === ":memory:" ? file : path.resolve(file), lockWaitMs: intSetting(env, "LICENSEKIT_SQLITE_LOCK_WAIT_MS", SQLITE_LOCK_WAIT_MS, 0, 60_000) };
  }
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    try {
      new URL(url);
    } catch {
      throw new ConfigError(name, "is not a valid postgres:// URL");
    }
    return { engine: "postgres", url, poolSize: intSetting(env, "LICENSEKIT_DB_POOL_SIZE", 10, 1, 1000) };
  }
  throw new ConfigError(name, "must start with sqlite: or postgres://");
}

export function parseMasterKey(raw: string, setting = "LICENSEKIT_MASTER_KEY"): Buffer {
  const v = raw.trim();
  if (/^[0-9a-fA-F]{64}$/.test(v)) return Buffer.from(v, "hex");
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(v)) {
    const b = Buffer.from(v.replace(/-/g, "+").replace(/_/g, "/"), "base64");
    if (b.length === 32) return b;
  }
  throw new ConfigError(setting, "must be 32 bytes written as 64 hex characters or base64");
}

/** Upper bound of LICENSEKIT_WORKERS / `serve --workers`. */
export const MAX_WORKERS = 64;

const LOG_LEVELS: LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
export const BOOTSTRAP_TOKEN_PATTERN = /^lkm_[A-Za-z0-9]{20,200}$/;

export function loadConfig(env: Env = process.env): Config {
  const database = parseDatabase(env);
  const host = (env.LICENSEKIT_HOST ?? "").trim() || "127.0.0.1";
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(host)) throw new ConfigError("LICENSEKIT_HOST", `is not a host name or address: "${host}"`);
  const port = intSetting(env, "LICENSEKIT_PORT", 8080, 0, 65535);

  const masterRaw = env.LICENSEKIT_MASTER_KEY;
  const masterKey = masterRaw && masterRaw.trim() !== "" ? parseMasterKey(masterRaw) : undefined;

  const dataDirRaw = (env.LICENSEKIT_DATA_DIR ?? "").trim();
  const dataDir = dataDirRaw
    ? path.resolve(dataDirRaw)
    : database.engine === "sqlite" && database.file !== ":memory:"
      ? path.dirname(database.file)
      : path.resolve("data");

  const tokenRaw = (env.LICENSEKIT_BOOTSTRAP_TOKEN ?? "").trim();
  if (tokenRaw && !BOOTSTRAP_TOKEN_PATTERN.test(tokenRaw)) {
    throw new ConfigError("LICENSEKIT_BOOTSTRAP_TOKEN", "must be lkm_ followed by 20 to 200 letters or digits");
  }

  const level = ((env.LICENSEKIT_LOG_LEVEL ?? "").trim() || "info") as LogLevel;
  if (!LOG_LEVELS.includes(level)) {
    throw new ConfigError("LICENSEKIT_LOG_LEVEL", `must be one of ${LOG_LEVELS.join(", ")}, got "${level}"`);
  }

  const workers = intSetting(env, "LICENSEKIT_WORKERS", 1, 1, MAX_WORKERS);
  if (workers > 1 && database.engine === "sqlite" && database.file === ":memory:") {
    throw new ConfigError("LICENSEKIT_WORKERS", "several workers need a database they can share; sqlite::memory: belongs to one process");
  }

  const proxiesRaw = (env.LICENSEKIT_TRUSTED_PROXIES ?? "").trim();
  const trustedProxies = proxiesRaw ? proxiesRaw.split(",").map((s) => s.trim()).filter(Boolean) : [];
  for (const p of trustedProxies) {
    if (!parseCidr(p)) throw new ConfigError("LICENSEKIT_TRUSTED_PROXIES", `"${p}" is not an IP address or CIDR`);
  }

  return {
    database,
    host,
    port,
    masterKey,
    dataDir,
    bootstrapToken: tokenRaw || undefined,
    logLevel: level,
    trustedProxies,
    bodyLimitBytes: intSetting(env, "LICENSEKIT_BODY_LIMIT_BYTES", 262144, 1024, 64 * 1024 * 1024),
    requestTimeoutMs: intSetting(env, "LICENSEKIT_REQUEST_TIMEOUT_MS", 30000, 100, 600000),
    idempotencyRetentionHours: intSetting(env, "LICENSEKIT_IDEMPOTENCY_RETENTION_HOURS", 24, 1, 24 * 90),
    keyRefreshSeconds: intSetting(env, "LICENSEKIT_KEY_REFRESH_SECONDS", 10, 1, 3600),
    sqliteCheckpointMs: intSetting(env, "LICENSEKIT_SQLITE_CHECKPOINT_MS", 200, 0, 60_000),
    sideEffectFlushMs: intSetting(env, "LICENSEKIT_SIDE_EFFECT_FLUSH_MS", 2000, 10, 600000),
    webhookAllowPrivate: boolSetting(env, "LICENSEKIT_WEBHOOK_ALLOW_PRIVATE", false),
    webhookDelivery: {
      concurrency: intSetting(env, "LICENSEKIT_WEBHOOK_CONCURRENCY", 4, 1, 64),
      pollMs: intSetting(env, "LICENSEKIT_WEBHOOK_POLL_MS", 1000, 10, 600000),
      backoffBaseMs: intSetting(env, "LICENSEKIT_WEBHOOK_BACKOFF_BASE_MS", 10000, 1, 3600000),
      timeoutMs: intSetting(env, "LICENSEKIT_WEBHOOK_TIMEOUT_MS", 10000, 1000, 20000),
    },
    exportPdfMaxRows: intSetting(env, "LICENSEKIT_EXPORT_PDF_MAX_ROWS", 10000, 1, 100000),
    rateLimits: parseRateLimits(env, database, workers),
    workers,
    runtimeCache: {
      size: intSetting(env, "LICENSEKIT_RUNTIME_CACHE_SIZE", 10_000_000, 0, 10_000_000),
      budgetBytes: cacheBudgetBytes(env),
      pollMs: intSetting(env, "LICENSEKIT_RUNTIME_CHANGES_POLL_MS", 200, 10, 500),
    },
    shutdownTimeoutMs: intSetting(env, "LICENSEKIT_SHUTDOWN_TIMEOUT_MS", 10000, 1000, 600000),
  };
}

const RATE_MAX = 1_000_000;

function parseRateLimits(env: Env, database: DatabaseConfig, workers: number): RateLimitConfig {
  const runtimePerSecond = intSetting(env, "LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND", 20, 0, RATE_MAX);
  const storeName = "LICENSEKIT_RATE_LIMIT_STORE";
  const storeRaw = (env[storeName] ?? "").trim().toLowerCase();
  // In memory every process keeps its own buckets, so N workers would allow N times the limit:
  // the database store is the shared one, and the default wherever more than one process serves.
  const store = storeRaw === "" ? (database.engine === "sqlite" && workers === 1 ? "memory" : "database") : storeRaw;
  if (store !== "memory" && store !== "database") throw new ConfigError(storeName, `must be memory or database, got "${env[storeName]}"`);
  return {
    runtimePerSecond,
    runtimeBurst: intSetting(env, "LICENSEKIT_RATE_LIMIT_RUNTIME_BURST", Math.max(1, runtimePerSecond * 2), 1, 2 * RATE_MAX),
    authFailuresPerMinute: intSetting(env, "LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", 30, 0, RATE_MAX),
    managementPerSecond: intSetting(env, "LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND", 50, 0, RATE_MAX),
    store,
  };
}
