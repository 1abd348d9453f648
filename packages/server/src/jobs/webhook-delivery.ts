// The webhook delivery worker (D6). Every serving process runs one: it polls the outbox for due
// deliveries, claims one per sender (several senders per process), POSTs the signed body and records
// the outcome. Claims make it safe to run in any number of processes on one PostgreSQL (see
// store/webhook-deliveries.ts); a process that dies mid-send leaves a claim that lapses after 30 s,
// and the delivery is sent again (at-least-once: receivers deduplicate by delivery id).
//
// Each attempt: resolve the host name, refuse every address that is loopback, private, link-local,
// unique-local, unspecified (unless LICENSEKIT_WEBHOOK_ALLOW_PRIVATE=true), then connect only to the
// checked addresses (the socket's DNS lookup is pinned to them, so a rebinding between the check and
// the connect cannot reach an internal address). 2xx within the timeout is delivered; anything else —
// 3xx included, redirects are never followed — is retried with backoff, up to 12 attempts a round.
// Secrets and signatures are never logged or stored.
import { createHmac, randomInt } from "node:crypto";
import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { Clock } from "../clock.js";
import type { WebhookDeliveryConfig } from "../config.js";
import { blockedAddressKind } from "../domain/webhook-url.js";
import type { Metrics } from "../observability/metrics.js";
import { eventView } from "../store/audit-events.js";
import type { Store } from "../store/db.js";
import { openWebhookSecret } from "../store/webhook-endpoints.js";
import {
  type AttemptOutcome,
  claimDueDelivery,
  hasDueDelivery,
  RESPONSE_BODY_LIMIT,
  recordAttempt,
  releaseClaim,
  type WebhookDeliveryRow,
} from "../store/webhook-deliveries.js";

/** Attempts in one round (D6); after the last one fails the delivery is `failed`. */
export const ATTEMPTS_PER_ROUND = 12;
/** Each retry waits this many times the previous delay… */
export const BACKOFF_FACTOR = 3;
/** …but never more than this many times the first one (10 s → 5 h). */
export const BACKOFF_CAP_FACTOR = 1800;
/** ±20 % random spread, so receivers that fail together are not retried together. */
const JITTER = 0.2;

export const USER_AGENT = "LicenseKit-Webhooks/1";
export const BLOCKED_ERROR = "blocked: resolves to a private address";

/**
 * The nominal delay after the `position`-th attempt of a round failed (1-based, 1..11), before jitter:
 * base, 3×base, 9×base, … capped at 1800×base. With the default 10 s base the 11 waits add up to ~23 h.
 */
export function nominalBackoffMs(position: number, baseMs: number): number {
  return Math.min(baseMs * BACKOFF_FACTOR ** (position - 1), baseMs * BACKOFF_CAP_FACTOR);
}

/** The delay with jitter (uniform in ±20 %), at least 1 ms. */
export function backoffMs(position: number, baseMs: number, random: () => number = () => randomInt(1_000_000) / 1_000_000): number {
  const nominal = nominalBackoffMs(position, baseMs);
  return Math.max(1, Math.round(nominal * (1 - JITTER + 2 * JITTER * random())));
}

/** Where in its round of 12 an attempt falls, given how many attempts the delivery had before it. */
export function roundPosition(previousAttempts: number): number {
  return (previousAttempts % ATTEMPTS_PER_ROUND) + 1;
}

/** What an attempt sends: the exact body bytes and the headers (the signature covers those bytes). */
export interface SignedDelivery {
  body: Buffer;
  headers: Record<string, string>;
}

/** Builds the body once and signs exactly its bytes: v1=hex(HMAC-SHA256(secret, "<ts>.<delivery_id>.<body>")). */
export function signDelivery(secret: string, deliveryId: string, event: { sequence: number; event_type: string }, timestampSeconds: number): SignedDelivery {
  const body = Buffer.from(JSON.stringify({ delivery_id: deliveryId, event }), "utf8");
  const ts = String(timestampSeconds);
  const mac = createHmac("sha256", secret).update(`${ts}.${deliveryId}.`).update(body).digest("hex");
  return {
    body,
    headers: {
      "content-type": "application/json",
      "user-agent": USER_AGENT,
      "x-locksmith-delivery-id": deliveryId,
      "x-locksmith-event-sequence": String(event.sequence),
      "x-locksmith-event-type": event.event_type,
      "x-locksmith-timestamp": ts,
      "x-locksmith-signature": `v1=${mac}`,
    },
  };
}

export interface Address {
  address: string;
  family: 4 | 6;
}

type Resolution = { ok: true; addresses: Address[] } | { ok: false; error: string };

/** The addresses a delivery may connect to, or why it may not connect at all. */
export async function resolveTarget(hostname: string, allowPrivate: boolean): Promise<Resolution> {
  const host = hostname.replace(/^\[|\]$/g, "");
  const literal = net.isIP(host);
  let addresses: Address[];
  if (literal !== 0) {
    addresses = [{ address: host, family: literal as 4 | 6 }];
  } else {
    try {
      const found = await dns.promises.lookup(host, { all: true, verbatim: true });
      addresses = found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
    } catch (err) {
      return { ok: false, error: `dns: ${(err as NodeJS.ErrnoException).code ?? "lookup failed"}` };
    }
    if (addresses.length === 0) return { ok: false, error: "dns: no address" };
  }
  if (!allowPrivate && addresses.some((a) => blockedAddressKind(a.address) !== null)) return { ok: false, error: BLOCKED_ERROR };
  return { ok: true, addresses };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void;

/** A socket `lookup` that answers only with the addresses already checked (no second DNS query). */
function pinnedLookup(addresses: Address[]) {
  return (_hostname: string, options: { family?: number | string; all?: boolean } | LookupCallback, cb?: LookupCallback) => {
    const callback = (typeof options === "function" ? options : cb) as LookupCallback;
    const opts = typeof options === "function" ? {} : options;
    const family = opts.family === 4 || opts.family === "IPv4" ? 4 : opts.family === 6 || opts.family === "IPv6" ? 6 : 0;
    const list = family === 0 ? addresses : addresses.filter((a) => a.family === family);
    if (list.length === 0) {
      const err: NodeJS.ErrnoException = new Error("no checked address of the requested family");
      err.code = "ENOTFOUND";
      callback(err, "");
      return;
    }
    if (opts.all) callback(null, list);
    else callback(null, list[0]!.address, list[0]!.family);
  };
}

interface HttpResult {
  statusCode: number;
  body: string;
}

/** The first RESPONSE_BODY_LIMIT bytes as text, without NULs (PostgreSQL text cannot hold them). */
function responseText(chunks: Buffer[]): string {
  return Buffer.concat(chunks).subarray(0, RESPONSE_BODY_LIMIT).toString("utf8").replace(/\0/g, "");
}

/**
 * One POST to `url`, connecting only to `addresses` (the socket never looks the host name up itself;
 * Host and TLS server name stay the URL's). Rejects on connection errors, timeout or abort.
 */
export function postPinned(url: URL, addresses: Address[], signed: SignedDelivery, timeoutMs: number, signal: AbortSignal): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(Object.assign(new Error("aborted"), { code: "ABORTED" }));
      return;
    }
    const client = url.protocol === "https:" ? https : http;
    let settled = false;
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | null, result?: HttpResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      req.destroy();
      if (err) reject(err);
      else resolve(result!);
    };
    const req = client.request(
      url,
      {
        method: "POST",
        headers: { ...signed.headers, "content-length": String(signed.body.length) },
        agent: false,
        lookup: pinnedLookup(addresses) as unknown as typeof dns.lookup,
      },
      (res) => {
        const statusCode = res.statusCode ?? 0;
        res.on("data", (chunk: Buffer) => {
          if (size < RESPONSE_BODY_LIMIT) chunks.push(chunk);
          size += chunk.length;
          if (size >= RESPONSE_BODY_LIMIT) finish(null, { statusCode, body: responseText(chunks) });
        });
        res.on("end", () => finish(null, { statusCode, body: responseText(chunks) }));
        res.on("error", (err) => finish(err));
      },
    );
    const timer = setTimeout(() => finish(Object.assign(new Error("timeout"), { code: "TIMEOUT" })), timeoutMs);
    const onAbort = () => finish(Object.assign(new Error("aborted"), { code: "ABORTED" }));
    signal.addEventListener("abort", onAbort);
    req.on("error", (err) => finish(err));
    req.end(signed.body);
  });
}

/** The pino-like logger the worker writes to (app.log); never given secrets or signatures. */
export interface WorkerLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WebhookWorkerDeps {
  store: Store;
  clock: Clock;
  config: WebhookDeliveryConfig;
  allowPrivate: boolean;
  secretKey: Buffer;
  metrics: Metrics;
}

export class WebhookDeliveryWorker {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  private abort = new AbortController();
  private log: WorkerLog | null = null;

  constructor(private readonly deps: WebhookWorkerDeps) {}

  /** Starts polling every `pollMs`; a poll drains every due delivery before the next is scheduled. */
  start(log?: WorkerLog): void {
    if (this.timer || this.stopped) return;
    this.log = log ?? null;
    const tick = () => {
      this.timer = null;
      if (this.stopped) return;
      this.runOnce().then(
        () => this.schedule(tick),
        (err) => {
          this.log?.error({ err }, "webhook delivery poll failed");
          this.schedule(tick);
        },
      );
    };
    this.schedule(tick);
  }

  private schedule(tick: () => void): void {
    if (this.stopped) return;
    this.timer = setTimeout(tick, this.deps.config.pollMs);
    this.timer.unref();
  }

  /**
   * Stops polling and claiming. Attempts in flight get `graceMs` to finish and be recorded (graceful
   * shutdown); those still running then are aborted and their claims given back uncounted. A later
   * call (the app's onClose after main.ts started the shutdown) waits for the first one.
   */
  stop(graceMs = 0): Promise<void> {
    this.stopping ??= this.stopAfter(graceMs);
    return this.stopping;
  }

  private async stopAfter(graceMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const running = this.running;
    if (running && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([running.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.abort.abort();
    await this.running?.catch(() => {});
  }

  /**
   * Sends every delivery that is due now with `concurrency` senders and returns how many attempts
   * were made (tests call it instead of waiting for the poll). Concurrent calls share one drain.
   */
  runOnce(): Promise<number> {
    if (this.running) return this.running;
    const run = this.drain().finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
    return run;
  }

  private async drain(): Promise<number> {
    if (!(await hasDueDelivery(this.deps.store.db, this.deps.clock.now()))) return 0;
    let attempts = 0;
    const sender = async () => {
      while (!this.stopped) {
        const claim = await claimDueDelivery(this.deps.store, this.deps.clock.now());
        if (!claim) return;
        if (await this.attempt(claim)) attempts++;
      }
    };
    // A sender that meets a database error stops; the others finish, then the error is reported.
    const results = await Promise.allSettled(Array.from({ length: this.deps.config.concurrency }, sender));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return attempts;
  }

  /** One attempt on a claimed delivery; false when it was given back instead (nothing counted). */
  private async attempt(claim: WebhookDeliveryRow): Promise<boolean> {
    const { store, clock } = this.deps;
    const endpoint = await store.db.selectFrom("webhook_endpoints").select(["id", "url", "secret_enc", "is_active"]).where("id", "=", claim.endpoint_id).executeTakeFirst();
    if (endpoint?.is_active !== 1) {
      // deactivated (or deleted) since the claim: the delivery waits for the endpoint
      await releaseClaim(store, claim, clock.now());
      return false;
    }
    const result = await this.send(claim, endpoint);
    if (result === "aborted") {
      await releaseClaim(store, claim, clock.now()).catch(() => {});
      return false;
    }
    const now = clock.now();
    const outcome = this.outcomeOf(claim, result);
    const recorded = await recordAttempt(store, claim, outcome, now);
    if (!recorded) return false;
    const ctx = { delivery_id: claim.id, webhook_id: claim.endpoint_id, event_sequence: Number(claim.event_sequence), attempt: Number(claim.attempts) + 1 };
    if (outcome.kind === "delivered") {
      this.deps.metrics.webhookDeliveries.inc({ result: "delivered" });
      this.log?.debug({ ...ctx, status_code: outcome.statusCode }, "webhook delivered");
    } else if (outcome.kind === "retry") {
      this.deps.metrics.webhookDeliveries.inc({ result: "retry_scheduled" });
      this.log?.warn({ ...ctx, status_code: outcome.statusCode, error: outcome.error, next_attempt_at: new Date(outcome.nextAttemptAt).toISOString() }, "webhook attempt failed; retry scheduled");
    } else {
      this.deps.metrics.webhookDeliveries.inc({ result: "failed" });
      this.log?.error({ ...ctx, status_code: outcome.statusCode, error: outcome.error }, "webhook delivery failed; no attempts left in this round");
    }
    return true;
  }

  private outcomeOf(claim: WebhookDeliveryRow, r: SendResult): AttemptOutcome {
    if (r.kind === "answered" && r.statusCode >= 200 && r.statusCode < 300) return { kind: "delivered", statusCode: r.statusCode, responseBody: r.body };
    const statusCode = r.kind === "answered" ? r.statusCode : null;
    const responseBody = r.kind === "answered" ? r.body : null;
    const error =
      r.kind === "error" ? r.error : r.statusCode >= 300 && r.statusCode < 400 ? `redirect not followed (HTTP ${r.statusCode})` : `HTTP ${r.statusCode}`;
    const position = roundPosition(Number(claim.attempts));
    if (position >= ATTEMPTS_PER_ROUND) return { kind: "failed", statusCode, error, responseBody };
    const nextAttemptAt = this.deps.clock.now() + backoffMs(position, this.deps.config.backoffBaseMs);
    return { kind: "retry", nextAttemptAt, statusCode, error, responseBody };
  }

  private async send(claim: WebhookDeliveryRow, endpoint: { id: string; url: string; secret_enc: string }): Promise<SendResult | "aborted"> {
    const { store, clock, config } = this.deps;
    const eventRow = await store.db.selectFrom("audit_events").selectAll().where("sequence", "=", claim.event_sequence).executeTakeFirst();
    if (!eventRow) return { kind: "error", error: `event ${claim.event_sequence} not found` };
    let url: URL;
    try {
      url = new URL(endpoint.url);
    } catch {
      return { kind: "error", error: "invalid endpoint url" };
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return { kind: "error", error: "endpoint url is not http(s)" };
    let secret: string;
    try {
      secret = openWebhookSecret(this.deps.secretKey, endpoint);
    } catch {
      return { kind: "error", error: "endpoint secret cannot be opened (wrong master key?)" };
    }
    const signed = signDelivery(secret, claim.id, eventView(eventRow), Math.floor(clock.now() / 1000));

    // One deadline for the whole attempt: DNS, connect and answer.
    const deadline = Date.now() + config.timeoutMs;
    const resolution = await withDeadline(resolveTarget(url.hostname, this.deps.allowPrivate), config.timeoutMs, this.abort.signal);
    if (resolution === "aborted") return "aborted";
    if (resolution === "timeout") return { kind: "error", error: `timeout: no answer within ${config.timeoutMs} ms` };
    if (!resolution.ok) return { kind: "error", error: resolution.error };
    try {
      const res = await postPinned(url, resolution.addresses, signed, Math.max(1, deadline - Date.now()), this.abort.signal);
      return { kind: "answered", statusCode: res.statusCode, body: res.body };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ABORTED") return "aborted";
      if (code === "TIMEOUT") return { kind: "error", error: `timeout: no answer within ${config.timeoutMs} ms` };
      return { kind: "error", error: `connection failed: ${code ?? (err as Error).message}` };
    }
  }
}

type SendResult = { kind: "answered"; statusCode: number; body: string } | { kind: "error"; error: string };

/** `p`, unless the time runs out or the worker stops first. */
async function withDeadline<T>(p: Promise<T>, ms: number, signal: AbortSignal): Promise<T | "timeout" | "aborted"> {
  if (signal.aborted) return "aborted";
  let timer: NodeJS.Timeout | undefined;
  let onAbort = () => {};
  const limit = new Promise<"timeout" | "aborted">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
    onAbort = () => resolve("aborted");
    signal.addEventListener("abort", onAbort);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}
