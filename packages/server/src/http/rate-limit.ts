// Rate limits (D10) around the two authenticated surfaces. Per request, before the credential lookup,
// a client IP with too many failed authentications is refused (429); a failed authentication (401)
// takes a token from that IP's bucket; an authenticated request takes one from its credential's bucket
// — keyed by the license id or api key id, never by the secret. Every answer carries
// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) for the bucket it used; a
// refusal is 429 RATE_LIMITED with `Retry-After` (signed on runtime routes like any runtime error, and
// never kept by idempotency: it happens before the claim).
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Clock } from "../clock.js";
import type { RateLimitConfig } from "../config.js";
import { type BucketQuote, type BucketSpec, msToFull } from "../domain/token-bucket.js";
import type { Store } from "../store/db.js";
import { type BucketStore, DatabaseBucketStore, MemoryBucketStore } from "../store/rate-limit-buckets.js";
import { ApiError } from "./errors.js";

export type RateLimitKind = "runtime" | "management" | "auth_failures";
export type AuthHook = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** Bucket-name prefixes; the rest is a stored id or a client IP. */
const PREFIX: Record<RateLimitKind, string> = { runtime: "rt:", management: "mg:", auth_failures: "af:" };

export function bucketSpecs(config: RateLimitConfig): Partial<Record<RateLimitKind, BucketSpec>> {
  const specs: Partial<Record<RateLimitKind, BucketSpec>> = {};
  if (config.runtimePerSecond > 0) {
    specs.runtime = { capacity: config.runtimeBurst, refillTokens: config.runtimePerSecond, refillPeriodMs: 1000 };
  }
  if (config.managementPerSecond > 0) {
    specs.management = { capacity: config.managementPerSecond, refillTokens: config.managementPerSecond, refillPeriodMs: 1000 };
  }
  if (config.authFailuresPerMinute > 0) {
    specs.auth_failures = { capacity: config.authFailuresPerMinute, refillTokens: config.authFailuresPerMinute, refillPeriodMs: 60_000 };
  }
  return specs;
}

export class RateLimits {
  readonly specs: Partial<Record<RateLimitKind, BucketSpec>>;
  readonly buckets: BucketStore;

  constructor(
    config: RateLimitConfig,
    private readonly clock: Clock,
    store: Store,
  ) {
    this.specs = bucketSpecs(config);
    const retainMs = Math.max(0, ...Object.values(this.specs).map(msToFull));
    this.buckets = config.store === "database" ? new DatabaseBucketStore(store, retainMs) : new MemoryBucketStore();
  }

  /** Takes a token; null when that limit is off. */
  async take(kind: RateLimitKind, id: string): Promise<BucketQuote | null> {
    const spec = this.specs[kind];
    return spec ? this.buckets.take(PREFIX[kind] + id, spec, this.clock.now()) : null;
  }

  /** Looks without taking; null when that limit is off. */
  async peek(kind: RateLimitKind, id: string): Promise<BucketQuote | null> {
    const spec = this.specs[kind];
    return spec ? this.buckets.peek(PREFIX[kind] + id, spec, this.clock.now()) : null;
  }

  /**
   * Wraps a surface's authentication hook (managementAuth / runtimeAuth) with the limits: the failed-
   * authentication gate before it, the failure count when it answers 401, the credential's bucket after
   * it — also when it refuses for another reason (a 403 scope denial still spends the token's budget).
   */
  around(surface: "runtime" | "management", auth: AuthHook): AuthHook {
    // Both limits of this surface off: nothing to wrap.
    if (!this.specs.auth_failures && !this.specs[surface]) return auth;
    return async (req, reply) => {
      const gate = await this.peek("auth_failures", req.ip);
      if (gate && !gate.allowed) {
        setHeaders(reply, gate);
        throw refusal(gate, "too many failed authentications from this client address");
      }
      try {
        await auth(req, reply);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          const counted = await this.take("auth_failures", req.ip);
          if (counted) setHeaders(reply, counted);
          throw err;
        }
        await this.limitCredential(surface, req, reply);
        throw err;
      }
      await this.limitCredential(surface, req, reply);
    };
  }

  private async limitCredential(surface: "runtime" | "management", req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const id = surface === "runtime" ? req.runtime?.license.id : req.principal?.id;
    if (!id) return;
    const q = await this.take(surface, id);
    if (!q) return;
    setHeaders(reply, q);
    if (!q.allowed) {
      throw refusal(q, surface === "runtime" ? "too many requests for this license" : "too many requests for this token");
    }
  }
}

function setHeaders(reply: FastifyReply, q: BucketQuote): void {
  reply.header("RateLimit-Limit", String(q.limit));
  reply.header("RateLimit-Remaining", String(q.remaining));
  reply.header("RateLimit-Reset", String(q.resetSeconds));
}

function refusal(q: BucketQuote, why: string): ApiError {
  const wait = Math.max(1, q.retryAfterSeconds);
  return new ApiError("RATE_LIMITED", `${why}; retry after ${wait} s`, { "retry-after": String(wait) });
}
