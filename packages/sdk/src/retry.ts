// The retry rule, exactly as LicenseKit's error-handling guidance states it:
//   retry transport failures, 429 and 5xx — and only for GET/HEAD or requests carrying an Idempotency-Key;
//   never any other 4xx, never IDEMPOTENCY_CONFLICT.
// Exponential backoff with full jitter, a maximum number of attempts, an overall deadline, an AbortSignal.
import { ApiError, TransportError } from "./errors.js";

export interface RetryOptions {
  /** Retries after the first attempt (so at most `retries + 1` attempts). Default 2; 0 turns retries off. */
  retries?: number;
  /**
   * Methods retried without an Idempotency-Key. Default `["GET", "HEAD"]`. Only GET and HEAD are honoured:
   * another method is retried only when the request carries an Idempotency-Key (whatever this list says).
   */
  retryableMethods?: readonly string[];
  /** First backoff ceiling in ms; the n-th retry waits a random time in [0, min(maxDelayMs, baseDelayMs·2^(n-1))]. Default 250. */
  baseDelayMs?: number;
  /** Upper bound of a backoff wait in ms (a server's Retry-After is honoured beyond it, within the deadline). Default 5000. */
  maxDelayMs?: number;
  /** Overall deadline for the call in ms, across every attempt and wait. Default 60000. */
  deadlineMs?: number;
}

export type ResolvedRetryOptions = Required<RetryOptions>;

export const DEFAULT_RETRY: ResolvedRetryOptions = {
  retries: 2,
  retryableMethods: ["GET", "HEAD"],
  baseDelayMs: 250,
  maxDelayMs: 5000,
  deadlineMs: 60_000,
};

const SAFE_METHODS = new Set(["GET", "HEAD"]);

function nonNegative(v: number | undefined, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : fallback;
}

export function resolveRetryOptions(...layers: (RetryOptions | undefined)[]): ResolvedRetryOptions {
  const merged: RetryOptions = {};
  for (const l of layers) if (l) Object.assign(merged, Object.fromEntries(Object.entries(l).filter(([, v]) => v !== undefined)));
  return {
    retries: Math.floor(nonNegative(merged.retries, DEFAULT_RETRY.retries)),
    retryableMethods: (merged.retryableMethods ?? DEFAULT_RETRY.retryableMethods).map((m) => m.toUpperCase()),
    baseDelayMs: nonNegative(merged.baseDelayMs, DEFAULT_RETRY.baseDelayMs),
    maxDelayMs: nonNegative(merged.maxDelayMs, DEFAULT_RETRY.maxDelayMs),
    deadlineMs: nonNegative(merged.deadlineMs, DEFAULT_RETRY.deadlineMs),
  };
}

/** Whether a request may be retried at all: GET/HEAD (when listed), or any method sent with an Idempotency-Key. */
export function isRetryableRequest(method: string, hasIdempotencyKey: boolean, options: Pick<ResolvedRetryOptions, "retryableMethods">): boolean {
  if (hasIdempotencyKey) return true;
  const m = method.toUpperCase();
  return SAFE_METHODS.has(m) && options.retryableMethods.includes(m);
}

/** Whether a failure is of a retryable kind: a transport failure (not an abort), 429, or 5xx — never IDEMPOTENCY_CONFLICT. */
export function isRetryableFailure(error: unknown): boolean {
  if (error instanceof TransportError) return !error.aborted;
  if (error instanceof ApiError) {
    if (error.code === "IDEMPOTENCY_CONFLICT") return false;
    return error.status === 429 || (error.status >= 500 && error.status <= 599);
  }
  return false;
}

/**
 * Parses a Retry-After header value: delta-seconds or an HTTP-date. Returns milliseconds to wait
 * (0 for a date in the past), or undefined when absent or malformed.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP-date always names its month and weekday; anything else (e.g. "-3", which Date.parse reads as a year) is malformed.
  if (!/[a-z]{3}/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Full jitter: a random wait in [0, min(maxDelayMs, baseDelayMs · 2^(retry-1))] for the retry-th retry (1-based). */
export function backoffDelay(retry: number, options: Pick<ResolvedRetryOptions, "baseDelayMs" | "maxDelayMs">, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * How long to wait before the next attempt after `error`, or undefined when the failure is not retried
 * at this point. A 429/503 with Retry-After waits exactly that long; a wait that would pass the deadline
 * is not started (the call fails at once with the last error).
 */
export function retryDelay(
  error: unknown,
  retry: number,
  options: Pick<ResolvedRetryOptions, "baseDelayMs" | "maxDelayMs">,
  remainingMs: number,
  random?: () => number,
): number | undefined {
  let delay: number | undefined;
  if (error instanceof ApiError && (error.status === 429 || error.status === 503)) {
    delay = parseRetryAfter(error.headers?.get("retry-after"));
  }
  delay ??= backoffDelay(retry, options, random);
  return delay < remainingMs ? delay : undefined;
}

/** Resolves after `ms`, or rejects at once with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A v4 UUID for Idempotency-Key: WebCrypto `randomUUID`, else `getRandomValues`; on a runtime with no
 * global WebCrypto (Node 18 without --experimental-global-webcrypto) Math.random — a key must be unique, not secret.
 */
export function newIdempotencyKey(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  if (typeof c?.getRandomValues === "function") c.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
