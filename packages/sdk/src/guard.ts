// The license guard: what an application runs to stay licensed. It activates once (and remembers it),
// validates at the entitlement's `next_check_at` (plus jitter), verifies every answer, keeps the last
// VERIFIED entitlement, and during outages runs on that entitlement (or a stored offline envelope)
// inside a grace window. Its `state`:
//
//   pending      no check has finished yet
//   valid        the server's latest answer verified and says the license is good
//   grace        the server is unreachable (transport failure, 5xx, 429): running on the cached
//                entitlement or a verified offline envelope, inside the grace window
//   denied       a VERIFIED refusal (signed error envelope), with its code, e.g. LICENSE_INACTIVE
//   tampered     an answer (or stored data) failed signature verification: neither a denial nor valid
//   unavailable  nothing verified to run on: never validated, the grace window is over, or the clock
//                was set back (CLOCK_ROLLBACK). Never the result of a verified refusal.
//
// Rules: a network error never makes the state `denied` (it is `grace` while inside the window); a
// signature failure — or a genuine old answer replayed (older than the last verified one, or past its
// own next_check_at) — never makes it `valid` or `denied`. Only a verified refusal is `denied`, and it
// drops the cached entitlement and envelope, so cutting the network afterwards cannot revive them.
//
// The grace window of a cached entitlement ends at min(next_check_at + offlineGraceMs, expires_at):
// never past the license's own expiry. An offline envelope (offlineEnvelope: true) brings its own,
// server-chosen window (offline.expires_at, see docs/offline-format.md).
import { encodeBase64 } from "./base64.js";
import { ApiError, SignatureVerificationError, TransportError } from "./errors.js";
import type { operations } from "./generated/openapi.js";
import type { Hooks } from "./hooks.js";
import { canonicalLicenseKey, type OfflineEnvelope, OfflineLicenseError, type RuntimeEntitlement, verifyOfflineLicense } from "./offline.js";
import { newIdempotencyKey, type RetryOptions } from "./retry.js";
import { RuntimeClient } from "./runtime.js";
import type { GuardStorage } from "./storage.js";
import {
  createKeyCache,
  type KeyResolver,
  type KeySource,
  PublicKeyStore,
  type RuntimeSignature,
  type SignedRuntimeResult,
  subtle,
  verifyRuntimeError,
  verifyRuntimeResult,
} from "./verify.js";

export type GuardState = "pending" | "valid" | "grace" | "denied" | "tampered" | "unavailable";
/** Where the entitlement the guard runs on came from. */
export type GuardSource = "online" | "cache" | "offline";

/** Time and timers, injectable so tests (and simulations) drive the guard with a manual clock. */
export interface GuardClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Date.now and the runtime's timers (unref'd where possible, so a guard never keeps a process alive). */
export const systemGuardClock: GuardClock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = globalThis.setTimeout(fn, ms) as unknown as { unref?: () => void };
    t.unref?.();
    return t;
  },
  clearTimeout(handle) {
    globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]);
  },
};

type BindingBody = NonNullable<operations["activateLicense"]["requestBody"]>["content"]["application/json"];
/** The binding fields sent with every call besides `fingerprint` (hostname, os, app_version, container identity…). */
export type GuardBinding = Omit<BindingBody, "fingerprint">;

export interface LicenseGuardOptions extends Hooks {
  baseUrl: string;
  licenseKey: string;
  /** This machine's hardware fingerprint. */
  fingerprint: string;
  storage: GuardStorage;
  binding?: GuardBinding;
  /** Trusted keys (pinned, or the public-keys `data`): verification then never fetches. */
  keys?: KeySource;
  /** A key cache to share; default: one that fetches /api/v1/system/public-keys on an unknown kid. */
  keyCache?: KeyResolver;
  clock?: GuardClock;
  fetch?: typeof fetch;
  /** Retries of each call (RuntimeClient). Default: the SDK's (transport/429/5xx, keyed or safe calls only). */
  retry?: RetryOptions;
  timeoutMs?: number;
  /**
   * Extra random delay added to every scheduled check: a maximum in ms, or a function of the base
   * delay. Default: up to 10% of the delay, at most 5 minutes.
   */
  jitter?: number | ((delayMs: number) => number);
  /** Random source in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
  /** How long past next_check_at a cached entitlement may be used during an outage (default 7 days). */
  offlineGraceMs?: number;
  /** Request, verify and store an offline envelope after each successful online check (default false). */
  offlineEnvelope?: boolean;
  /** First wait before re-checking after an outage or a failed verification (default 60 s); doubles per failure. */
  retryIntervalMs?: number;
  /** Upper bound of that wait (default 15 min). */
  maxRetryIntervalMs?: number;
  /** When to ask again after a verified denial, e.g. to notice a reinstatement (default 1 hour). */
  deniedRecheckMs?: number;
  /** Allowed disagreement between this machine's clock and the server's before a rollback is assumed (default 5 min). */
  clockSkewMs?: number;
  /** The storage key (default "licensekit.guard"). */
  storageKey?: string;
  /** Called after every change of state or code. */
  onStateChange?: (snapshot: GuardSnapshot) => void;
}

export interface GuardSnapshot {
  state: GuardState;
  /** The code that led here: the denial's code, the outage's (TRANSPORT_ERROR, SERVICE_UNAVAILABLE, RATE_LIMITED…), SIGNATURE_VERIFICATION_FAILED, GRACE_EXPIRED, CLOCK_ROLLBACK. */
  code?: string;
  /** More about it: the denial's detail, the signature failure's reason, … */
  detail?: string;
  /** `meta.request_id` of the answer that led here, when there was one. */
  requestId?: string;
  /** The verified entitlement the application runs on (valid/grace); the last verified one otherwise. */
  entitlement?: RuntimeEntitlement;
  source?: GuardSource;
  /** In grace: when the window ends (epoch ms). */
  graceUntil?: number;
  /** When the last check finished (epoch ms). */
  checkedAt?: number;
  /** When the next scheduled check runs (epoch ms), while started. */
  nextCheckAt?: number;
  /** The error behind a non-valid state. */
  error?: unknown;
  /** The last failure of the storage, if its latest use failed. */
  storageError?: unknown;
}

export interface LicenseGuard {
  readonly state: GuardState;
  readonly code: string | undefined;
  /** valid or grace: the application may run. */
  readonly isLicensed: boolean;
  readonly entitlement: RuntimeEntitlement | undefined;
  snapshot(): GuardSnapshot;
  /** Runs one cycle (activate on first use, else validate; fall back during outages). Never rejects. */
  check(): Promise<GuardSnapshot>;
  /** Schedules checks at next_check_at (+ jitter), retries during outages; runs a first check if none ran. */
  start(): void;
  stop(): void;
  /** Resolves when no check is running. */
  whenIdle(): Promise<void>;
}

interface Persisted {
  v: 1;
  /** SHA-256 of the canonical license key (never the key): state of another key is discarded. */
  keyHash: string;
  fingerprint: string;
  activated?: { at: number; device_id?: string };
  /** The activation in flight: its Idempotency-Key is reused until it is answered. */
  activation?: { idempotencyKey: string; body: string };
  /** The last verified answer, re-verified before it is used from storage. */
  entitlement?: { data: RuntimeEntitlement; signature: unknown; verified_at: number };
  offline?: OfflineEnvelope;
  /** Monotonic "latest time seen" (server time on success, local time during outages). */
  lastSeenAt?: number;
  /** The last verified denial. */
  denial?: { code: string; detail?: string; at: number; request_id?: string };
}

const DAY_MS = 86_400_000;
const MAX_TIMER_MS = 2_147_483_647;

class Guard implements LicenseGuard {
  readonly #o: LicenseGuardOptions;
  readonly #clock: GuardClock;
  readonly #runtime: RuntimeClient;
  readonly #keys: KeyResolver;
  readonly #storageKey: string;
  readonly #offlineGraceMs: number;
  readonly #skewMs: number;
  #p: Persisted | undefined;
  /** The stored entitlement was verified in this process (or came from a verified answer). */
  #cacheVerified = false;
  #storageTampered: SignatureVerificationError | undefined;
  #snap: GuardSnapshot = { state: "pending" };
  #inflight: Promise<GuardSnapshot> | undefined;
  #started = false;
  #timer: unknown;
  #failures = 0;
  #checked = false;
  #offlineRefused = false;
  #storageError: unknown;

  constructor(o: LicenseGuardOptions) {
    if (!o || typeof o.baseUrl !== "string" || o.baseUrl === "") throw new TypeError("baseUrl is required");
    if (typeof o.licenseKey !== "string" || o.licenseKey === "") throw new TypeError("licenseKey is required");
    if (typeof o.fingerprint !== "string" || o.fingerprint.trim() === "") throw new TypeError("fingerprint is required");
    if (!o.storage || typeof o.storage.get !== "function" || typeof o.storage.set !== "function") throw new TypeError("storage {get, set} is required");
    this.#o = o;
    this.#clock = o.clock ?? systemGuardClock;
    this.#runtime = new RuntimeClient({
      baseUrl: o.baseUrl,
      licenseKey: o.licenseKey,
      ...(o.fetch ? { fetch: o.fetch } : {}),
      ...(o.retry ? { retry: o.retry } : {}),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.onRequest ? { onRequest: o.onRequest } : {}),
      ...(o.onError ? { onError: o.onError } : {}),
    });
    if (o.keyCache) this.#keys = o.keyCache;
    else if (Array.isArray(o.keys)) this.#keys = new PublicKeyStore(o.keys);
    else if (o.keys) this.#keys = o.keys as KeyResolver;
    else this.#keys = createKeyCache({ baseUrl: o.baseUrl, ...(o.fetch ? { fetch: o.fetch } : {}), now: () => this.#clock.now() });
    this.#storageKey = o.storageKey ?? "licensekit.guard";
    this.#offlineGraceMs = o.offlineGraceMs ?? 7 * DAY_MS;
    this.#skewMs = o.clockSkewMs ?? 5 * 60_000;
  }

  get state(): GuardState {
    return this.#snap.state;
  }
  get code(): string | undefined {
    return this.#snap.code;
  }
  get isLicensed(): boolean {
    return this.#snap.state === "valid" || this.#snap.state === "grace";
  }
  get entitlement(): RuntimeEntitlement | undefined {
    return this.#snap.entitlement;
  }

  snapshot(): GuardSnapshot {
    return this.#storageError === undefined ? { ...this.#snap } : { ...this.#snap, storageError: this.#storageError };
  }

  check(): Promise<GuardSnapshot> {
    if (!this.#inflight) {
      this.#inflight = this.#cycle().finally(() => {
        this.#inflight = undefined;
      });
    }
    return this.#inflight;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    if (!this.#checked && !this.#inflight) void this.check();
    else if (!this.#inflight) this.#schedule();
  }

  stop(): void {
    this.#started = false;
    this.#clearTimer();
    if (this.#snap.nextCheckAt !== undefined) this.#snap = { ...this.#snap, nextCheckAt: undefined };
  }

  async whenIdle(): Promise<void> {
    while (this.#inflight) await this.#inflight.catch(() => undefined);
  }

  // ---- one cycle ----

  async #cycle(): Promise<GuardSnapshot> {
    try {
      await this.#load();
      const now = this.#clock.now();
      try {
        const { result, operation } = await this.#callServer();
        const signed = result as SignedRuntimeResult<RuntimeEntitlement>;
        const verified = await verifyRuntimeResult(signed, this.#keys, { operation });
        if (operation === "validateLicense") this.#assertFresh(verified.data, now);
        await this.#onVerified(verified.data, signed.signature, now);
      } catch (err) {
        await this.#onFailure(err, now);
      }
    } catch (err) {
      // Storage or programming failures: nothing verified, never a denial.
      this.#set({ state: "unavailable", code: "GUARD_ERROR", detail: (err as Error)?.message, error: err });
    }
    this.#checked = true;
    this.#schedule();
    return this.snapshot();
  }

  /**
   * A genuine but old answer replayed by a man in the middle (e.g. from before a suspension) verifies;
   * it must not keep the application valid. validate answers are never replayed by the server (no
   * Idempotency-Key), so one older than the last verified answer, or already past its own
   * next_check_at, is treated as tampered.
   */
  #assertFresh(data: RuntimeEntitlement, now: number): void {
    const next = Date.parse(data.next_check_at);
    if (!(next + this.#skewMs >= now)) {
      throw new SignatureVerificationError("stale_answer", "the answer's next_check_at has already passed", { operation: "validateLicense" });
    }
    const issued = Date.parse(data.issued_at);
    const last = this.#p?.entitlement ? Date.parse(this.#p.entitlement.data.issued_at) : Number.NaN;
    if (Number.isFinite(last) && !(issued >= last)) {
      throw new SignatureVerificationError("replayed_answer", "the answer is older than the last verified one", { operation: "validateLicense" });
    }
  }

  #body(): BindingBody {
    return { ...this.#o.binding, fingerprint: this.#o.fingerprint };
  }

  async #callServer(): Promise<{ result: unknown; operation: string }> {
    const p = this.#p!;
    const body = this.#body();
    if (!p.activated) {
      const bodyJson = JSON.stringify(body);
      if (!p.activation || p.activation.body !== bodyJson) {
        p.activation = { idempotencyKey: newIdempotencyKey(), body: bodyJson };
        await this.#save();
      }
      return { result: await this.#runtime.activateLicense({ body, idempotencyKey: p.activation.idempotencyKey }), operation: "activateLicense" };
    }
    return { result: await this.#runtime.validateLicense({ body }), operation: "validateLicense" };
  }

  async #onVerified(data: RuntimeEntitlement, signature: unknown, now: number): Promise<void> {
    const p = this.#p!;
    p.activated ??= { at: now, device_id: data.device_id };
    delete p.activation;
    delete p.denial;
    p.entitlement = { data, signature, verified_at: now };
    const issued = Date.parse(data.issued_at);
    // Server time is the trusted anchor for rollback detection.
    p.lastSeenAt = Number.isFinite(issued) ? issued : now;
    this.#cacheVerified = true;
    this.#storageTampered = undefined;
    this.#failures = 0;
    await this.#save();
    if (this.#o.offlineEnvelope && !this.#offlineRefused) await this.#refreshEnvelope(now);
    this.#set({ state: "valid", entitlement: data, source: "online", checkedAt: now });
  }

  async #refreshEnvelope(now: number): Promise<void> {
    const p = this.#p!;
    try {
      const answer = await this.#runtime.issueOfflineLicense({ body: this.#body() });
      const envelope = (answer as { data: OfflineEnvelope }).data;
      // Store only an envelope that decrypts and verifies now.
      await verifyOfflineLicense({ envelope, licenseKey: this.#o.licenseKey, keys: this.#keys, fingerprint: this.#o.fingerprint, now, clockSkewMs: this.#skewMs });
      p.offline = { kid: envelope.kid, salt: envelope.salt, nonce: envelope.nonce, ciphertext: envelope.ciphertext };
      await this.#save();
    } catch (err) {
      if (err instanceof ApiError && err.code === "OFFLINE_NOT_ALLOWED") this.#offlineRefused = true;
      // Otherwise keep the previous envelope; the online answer already verified.
    }
  }

  async #onFailure(err: unknown, now: number): Promise<void> {
    if (err instanceof SignatureVerificationError) return this.#tampered(err, now);
    if (err instanceof ApiError) {
      if (err.status >= 500 || err.status === 429 || err.code === "IDEMPOTENCY_IN_PROGRESS") return this.#outage(err, now);
      if (err.code === "IDEMPOTENCY_CONFLICT") {
        delete this.#p!.activation; // a new key next time
        return this.#outage(err, now);
      }
      let verified: { error: { code: string; detail?: string } };
      try {
        verified = await verifyRuntimeError(err, this.#keys, { operation: err.operation });
      } catch (e) {
        if (e instanceof SignatureVerificationError) return this.#tampered(e, now, err.requestId);
        return this.#outage(e, now);
      }
      return this.#denied(verified.error.code, verified.error.detail, err, now);
    }
    return this.#outage(err, now);
  }

  async #denied(code: string, detail: string | undefined, err: ApiError, now: number): Promise<void> {
    const p = this.#p!;
    const last = p.entitlement?.data;
    p.denial = { code, at: now, ...(detail !== undefined ? { detail } : {}), ...(err.requestId ? { request_id: err.requestId } : {}) };
    // A verified refusal ends every fallback: an outage afterwards cannot bring them back.
    delete p.entitlement;
    delete p.offline;
    delete p.activation;
    this.#cacheVerified = false;
    this.#failures = 0;
    await this.#save();
    this.#set({ state: "denied", code, detail, requestId: err.requestId, entitlement: last, checkedAt: now, error: err });
  }

  #tampered(err: SignatureVerificationError, now: number, requestId?: string): void {
    this.#failures++;
    this.#set({
      state: "tampered",
      code: "SIGNATURE_VERIFICATION_FAILED",
      detail: err.reason,
      requestId,
      entitlement: this.#cacheVerified ? this.#p?.entitlement?.data : undefined,
      checkedAt: now,
      error: err,
    });
  }

  async #outage(err: unknown, now: number): Promise<void> {
    this.#failures++;
    const p = this.#p!;
    const code = err instanceof ApiError ? (err.code === "UNKNOWN_ERROR" ? `HTTP_${err.status}` : err.code) : err instanceof TransportError ? err.code : "TRANSPORT_ERROR";
    const requestId = err instanceof ApiError ? err.requestId : undefined;
    const base = { checkedAt: now, error: err, requestId };
    if (p.lastSeenAt !== undefined && now < p.lastSeenAt - this.#skewMs) {
      this.#set({ ...base, state: "unavailable", code: "CLOCK_ROLLBACK", detail: `this machine's clock reads ${iso(now)}, before ${iso(p.lastSeenAt)}`, entitlement: undefined });
      return;
    }
    p.lastSeenAt = Math.max(p.lastSeenAt ?? now, now);
    await this.#save();
    if (p.denial) {
      this.#set({ ...base, state: "denied", code: p.denial.code, detail: p.denial.detail, requestId: p.denial.request_id, entitlement: undefined });
      return;
    }
    const cached = await this.#verifiedCache();
    if (cached) {
      const until = this.#graceUntil(cached);
      if (now < until) {
        this.#set({ ...base, state: "grace", code, detail: describe(err), entitlement: cached, source: "cache", graceUntil: until });
        return;
      }
    }
    if (p.offline) {
      try {
        const v = await verifyOfflineLicense({
          envelope: p.offline,
          licenseKey: this.#o.licenseKey,
          keys: this.#keys,
          fingerprint: this.#o.fingerprint,
          now,
          lastSeenAt: p.lastSeenAt,
          clockSkewMs: this.#skewMs,
        });
        this.#set({ ...base, state: "grace", code, detail: describe(err), entitlement: v.data, source: "offline", graceUntil: v.expiresAt });
        return;
      } catch (e) {
        if (e instanceof SignatureVerificationError) {
          this.#tampered(e, now);
          return;
        }
        if (!(e instanceof OfflineLicenseError || e instanceof TransportError)) throw e;
      }
    }
    if (this.#storageTampered) {
      this.#tampered(this.#storageTampered, now);
      return;
    }
    const expired = cached !== undefined || p.offline !== undefined;
    this.#set({
      ...base,
      state: "unavailable",
      code: expired ? "GRACE_EXPIRED" : code,
      detail: expired ? `the server is unreachable (${code}) and the grace window is over` : describe(err),
      entitlement: cached,
    });
  }

  /** The cached entitlement, verified (once per process) against trusted keys; undefined if none or unverifiable. */
  async #verifiedCache(): Promise<RuntimeEntitlement | undefined> {
    const p = this.#p!;
    if (!p.entitlement) return undefined;
    if (this.#cacheVerified) return p.entitlement.data;
    try {
      await verifyRuntimeResult({ data: p.entitlement.data, signature: p.entitlement.signature as RuntimeSignature }, this.#keys, { operation: "validateLicense" });
      this.#cacheVerified = true;
      return p.entitlement.data;
    } catch (err) {
      if (err instanceof SignatureVerificationError) {
        // Altered storage: never trusted, dropped.
        this.#storageTampered = err;
        delete p.entitlement;
        await this.#save();
      }
      return undefined; // keys unreachable: cannot be trusted yet
    }
  }

  #graceUntil(e: RuntimeEntitlement): number {
    const next = Date.parse(e.next_check_at);
    const expires = e.expires_at ? Date.parse(e.expires_at) : Number.POSITIVE_INFINITY;
    return Math.min(Number.isFinite(next) ? next + this.#offlineGraceMs : Number.NEGATIVE_INFINITY, Number.isFinite(expires) ? expires : Number.POSITIVE_INFINITY);
  }

  // ---- scheduling ----

  #jitter(delay: number): number {
    const j = this.#o.jitter;
    const random = this.#o.random ?? Math.random;
    if (typeof j === "function") return Math.max(0, j(delay));
    const max = typeof j === "number" ? j : Math.min(delay * 0.1, 5 * 60_000);
    return Math.max(0, random() * max);
  }

  #schedule(): void {
    this.#clearTimer();
    if (!this.#started) return;
    const now = this.#clock.now();
    const s = this.#snap;
    let delay: number;
    if (s.state === "valid" && s.entitlement) {
      const next = Date.parse(s.entitlement.next_check_at);
      delay = Math.max(1000, Number.isFinite(next) ? next - now : 60_000);
    } else if (s.state === "denied" && s.code !== undefined && this.#p?.denial) {
      delay = this.#o.deniedRecheckMs ?? 3_600_000;
    } else {
      const first = this.#o.retryIntervalMs ?? 60_000;
      const max = this.#o.maxRetryIntervalMs ?? 15 * 60_000;
      delay = Math.min(max, first * 2 ** Math.max(0, Math.min(this.#failures - 1, 30)));
    }
    delay = Math.round(delay + this.#jitter(delay));
    // In grace, re-check no later than the end of the window, so the state changes on time.
    if (s.state === "grace" && s.graceUntil !== undefined) delay = Math.max(1000, Math.min(delay, s.graceUntil - now));
    const at = now + delay;
    this.#snap = { ...this.#snap, nextCheckAt: at };
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        if (!this.#started) return;
        // A clamped (very long) wait fires early: wait the rest.
        if (this.#clock.now() < at - 1000 && delay > MAX_TIMER_MS) this.#schedule();
        else void this.check();
      },
      Math.min(delay, MAX_TIMER_MS),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #set(next: GuardSnapshot): void {
    const prev = this.#snap;
    const snap = Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined)) as unknown as GuardSnapshot;
    this.#snap = snap;
    if (prev.state !== snap.state || prev.code !== snap.code) {
      try {
        this.#o.onStateChange?.(this.snapshot());
      } catch {
        // a listener's failure is not the guard's
      }
    }
  }

  // ---- persistence ----

  async #load(): Promise<void> {
    if (this.#p) return;
    const keyHash = await hashKey(this.#o.licenseKey);
    const fingerprint = this.#o.fingerprint;
    let p: Persisted | undefined;
    let raw: unknown;
    try {
      raw = await this.#o.storage.get(this.#storageKey);
    } catch (err) {
      this.#storageError = err; // unreadable storage: start fresh (activation is idempotent server-side)
    }
    if (typeof raw === "string" && raw !== "") {
      try {
        const parsed = JSON.parse(raw) as Persisted;
        if (parsed && parsed.v === 1 && parsed.keyHash === keyHash && parsed.fingerprint === fingerprint) p = parsed;
      } catch {
        p = undefined; // unreadable: start over
      }
    }
    this.#p = p ?? { v: 1, keyHash, fingerprint };
  }

  /** Persists; a storage failure is recorded (snapshot().storageError) but never changes the state. */
  async #save(): Promise<void> {
    try {
      await this.#o.storage.set(this.#storageKey, JSON.stringify(this.#p));
      this.#storageError = undefined;
    } catch (err) {
      this.#storageError = err;
    }
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function describe(err: unknown): string | undefined {
  return err instanceof Error ? err.message : undefined;
}

async function hashKey(licenseKey: string): Promise<string> {
  let k: string;
  try {
    k = canonicalLicenseKey(licenseKey);
  } catch {
    k = licenseKey.trim();
  }
  const digest = await subtle().digest("SHA-256", new TextEncoder().encode(`licensekit/guard/v1:${k}`));
  return encodeBase64(new Uint8Array(digest));
}

/**
 * Creates a license guard. `await guard.check()` runs the first cycle (activation on first use);
 * `guard.start()` keeps checking at next_check_at. Run the application while `guard.isLicensed`
 * (state `valid` or `grace`).
 */
export function createLicenseGuard(options: LicenseGuardOptions): LicenseGuard {
  return new Guard(options);
}
