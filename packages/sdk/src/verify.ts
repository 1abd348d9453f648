// Verification of signed runtime answers (D4), the official way: Ed25519 over the UTF-8 bytes of
// JSON.stringify(result.data) (or JSON.stringify(envelope.error) for our signed error envelopes), with
// the public key chosen by signature.kid from /api/v1/system/public-keys, accepting only "Ed25519".
//
// Trust comes only from a PublicKeyStore (keys fetched from the server or pinned by the application)
// or a KeyCache (which fetches /api/v1/system/public-keys on an unknown kid, rate-limited). A key, kid
// or algorithm carried inside a response or an envelope is never trusted: the signature object only
// names which trusted key to use. Every failure is a SignatureVerificationError, never an ApiError
// and never a valid result — except that a KeyCache which cannot load the key set at all raises a
// TransportError (nothing was verified: retry later; still never a valid result nor a denial).
import { decodeBase64 } from "./base64.js";
import { SignatureVerificationError, TransportError } from "./errors.js";

/** One entry of `GET /api/v1/system/public-keys` → `data`. */
export interface PublicKeyRecord {
  kid: string;
  algorithm: string;
  /** Standard base64 of the 32 raw Ed25519 public key bytes. */
  public_key: string;
  status?: string;
  created_at?: string;
}

/** The `signature` object of a runtime answer. */
export interface RuntimeSignature {
  alg: string;
  kid: string;
  value: string;
}

/** A runtime success answer: `{data, signature, meta}`. */
export interface SignedRuntimeResult<T = unknown> {
  data: T;
  signature?: RuntimeSignature | null;
  meta?: unknown;
}

/** A runtime error envelope: `{error, signature, meta}`. */
export interface SignedErrorEnvelope<E = RuntimeErrorBody> {
  error: E;
  signature?: RuntimeSignature | null;
  meta?: unknown;
}

export interface RuntimeErrorBody {
  code: string;
  message: string;
  detail?: string;
}

export interface VerifiedRuntimeResult<T> {
  ok: true;
  data: T;
  kid: string;
}

export interface VerifiedRuntimeError<E> {
  ok: true;
  error: E;
  kid: string;
}

/** Anything that can hand out a trusted verification key for a kid. */
export interface KeyResolver {
  /** The trusted key for `kid`, or undefined when there is none. */
  resolveKey(kid: string): Promise<CryptoKey | undefined>;
}

/** What the verify functions accept as the source of trusted keys. */
export type KeySource = KeyResolver | readonly PublicKeyRecord[];

export interface VerifyOptions {
  /** The operation name, copied onto a SignatureVerificationError. */
  operation?: string;
}

export const SIGNATURE_ALGORITHM = "Ed25519";

/** WebCrypto's SubtleCrypto, present on Node 19+ (18 with --experimental-global-webcrypto), Deno, Bun, browsers. */
export function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new Error(
      "WebCrypto (globalThis.crypto.subtle) is not available in this runtime; on Node 18 start with --experimental-global-webcrypto or assign the crypto module's webcrypto to globalThis.crypto",
    );
  }
  return s;
}

function sigError(reason: string, message: string, operation?: string, cause?: unknown): SignatureVerificationError {
  return new SignatureVerificationError(reason, message, { operation, cause });
}

/**
 * Trusted Ed25519 public keys by kid. Built from the `data` array of /api/v1/system/public-keys (or
 * that whole answer), or from keys pinned in the application. Entries whose algorithm is not
 * "Ed25519", or whose key is not 32 bytes of base64, are ignored.
 */
export class PublicKeyStore implements KeyResolver {
  readonly #records = new Map<string, PublicKeyRecord>();
  readonly #imported = new Map<string, Promise<CryptoKey>>();

  constructor(keys?: Iterable<PublicKeyRecord> | { data: readonly PublicKeyRecord[] } | null) {
    if (keys) this.add(keys);
  }

  /** Adds (or replaces) keys; returns how many were accepted. */
  add(keys: Iterable<PublicKeyRecord> | { data: readonly PublicKeyRecord[] }): number {
    const list: Iterable<PublicKeyRecord> = Symbol.iterator in keys ? keys : keys.data;
    let accepted = 0;
    for (const k of list) {
      if (!k || typeof k.kid !== "string" || k.kid === "" || k.algorithm !== SIGNATURE_ALGORITHM || typeof k.public_key !== "string") continue;
      let raw: Uint8Array;
      try {
        raw = decodeBase64(k.public_key);
      } catch {
        continue;
      }
      if (raw.length !== 32) continue;
      const previous = this.#records.get(k.kid);
      if (previous && previous.public_key !== k.public_key) this.#imported.delete(k.kid);
      this.#records.set(k.kid, { ...k });
      accepted++;
    }
    return accepted;
  }

  get(kid: string): PublicKeyRecord | undefined {
    const r = this.#records.get(kid);
    return r ? { ...r } : undefined;
  }

  has(kid: string): boolean {
    return this.#records.has(kid);
  }

  kids(): string[] {
    return [...this.#records.keys()];
  }

  records(): PublicKeyRecord[] {
    return [...this.#records.values()].map((r) => ({ ...r }));
  }

  get size(): number {
    return this.#records.size;
  }

  resolveKey(kid: string): Promise<CryptoKey | undefined> {
    const record = this.#records.get(kid);
    if (!record) return Promise.resolve(undefined);
    let p = this.#imported.get(kid);
    if (!p) {
      p = subtle().importKey("raw", decodeBase64(record.public_key), { name: SIGNATURE_ALGORITHM }, false, ["verify"]);
      this.#imported.set(kid, p);
      p.catch(() => this.#imported.delete(kid));
    }
    return p;
  }
}

function resolverOf(keys: KeySource): KeyResolver {
  if (Array.isArray(keys)) return new PublicKeyStore(keys as readonly PublicKeyRecord[]);
  return keys as KeyResolver;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Verifies `signature` over `payload` (the exact signed text) with a trusted key; returns the kid.
 * `expectedKid`, when given, must equal signature.kid (used for offline envelopes).
 */
export async function verifySignedText(
  payload: string,
  signature: unknown,
  keys: KeySource,
  opts: VerifyOptions & { expectedKid?: string } = {},
): Promise<string> {
  const op = opts.operation;
  if (signature === undefined || signature === null) throw sigError("missing_signature", "the answer carries no signature", op);
  if (!isRecord(signature)) throw sigError("malformed_signature", "the signature is not an object", op);
  const { alg, kid, value } = signature;
  if (alg !== SIGNATURE_ALGORITHM) throw sigError("unsupported_alg", `signature algorithm ${JSON.stringify(alg)} is not Ed25519`, op);
  if (typeof kid !== "string" || kid === "") throw sigError("malformed_signature", "the signature has no kid", op);
  if (typeof value !== "string") throw sigError("malformed_signature", "the signature has no value", op);
  if (opts.expectedKid !== undefined && kid !== opts.expectedKid) throw sigError("kid_mismatch", "the signature's kid does not match the envelope's kid", op);
  let sig: Uint8Array<ArrayBuffer>;
  try {
    sig = decodeBase64(value);
  } catch (err) {
    throw sigError("malformed_signature", "the signature value is not canonical base64", op, err);
  }
  if (sig.length !== 64) throw sigError("malformed_signature", "the signature value is not 64 bytes", op);
  let key: CryptoKey | undefined;
  try {
    key = await resolverOf(keys).resolveKey(kid);
  } catch (err) {
    // The key set could not be fetched: not evidence of tampering, but nothing is verified either.
    if (err instanceof TransportError || err instanceof SignatureVerificationError) throw err;
    throw sigError("key_unavailable", `the key ${kid} could not be loaded`, op, err);
  }
  if (!key) throw sigError("unknown_kid", `no trusted public key has kid ${JSON.stringify(kid)}`, op);
  let ok: boolean;
  try {
    ok = await subtle().verify({ name: SIGNATURE_ALGORITHM }, key, sig, new TextEncoder().encode(payload));
  } catch (err) {
    throw sigError("bad_signature", "the signature could not be checked", op, err);
  }
  if (!ok) throw sigError("bad_signature", "the signature does not match the answer", op);
  return kid;
}

/**
 * Verifies a runtime success answer the official way: Ed25519 over JSON.stringify(result.data), key
 * by signature.kid, alg "Ed25519". Returns `{ok: true, data, kid}`; throws SignatureVerificationError.
 */
export async function verifyRuntimeResult<T>(
  result: SignedRuntimeResult<T>,
  keys: KeySource,
  opts: VerifyOptions = {},
): Promise<VerifiedRuntimeResult<T>> {
  if (!isRecord(result) || !("data" in result) || result.data === undefined) {
    throw sigError("malformed_payload", "the answer has no data to verify", opts.operation);
  }
  const kid = await verifySignedText(JSON.stringify(result.data), result.signature, keys, opts);
  return { ok: true, data: result.data, kid };
}

/**
 * Verifies a signed runtime error envelope `{error, signature, meta}` (Ed25519 over
 * JSON.stringify(error)). Also accepts an object whose `body` is the envelope (an ApiError).
 * Returns `{ok: true, error, kid}`; throws SignatureVerificationError.
 */
export async function verifyRuntimeError<E = RuntimeErrorBody>(
  envelope: SignedErrorEnvelope<E> | { body: unknown; operation?: string },
  keys: KeySource,
  opts: VerifyOptions = {},
): Promise<VerifiedRuntimeError<E>> {
  let env: unknown = envelope;
  let operation = opts.operation;
  if (isRecord(envelope) && !("error" in envelope) && "body" in envelope) {
    env = envelope.body;
    if (operation === undefined && typeof envelope.operation === "string") operation = envelope.operation;
  }
  if (!isRecord(env) || !isRecord(env.error)) throw sigError("malformed_payload", "the answer is not an error envelope", operation);
  const kid = await verifySignedText(JSON.stringify(env.error), env.signature, keys, { ...opts, operation });
  return { ok: true, error: env.error as E, kid };
}

// ---- Key cache ----

export interface KeyCacheOptions {
  /** Server base URL; keys come from `${baseUrl}/api/v1/system/public-keys`. Not needed with `pinned`. */
  baseUrl?: string;
  fetch?: typeof fetch;
  /**
   * Pinned keys: the cache trusts exactly these and never fetches anything (fully offline
   * verification). A kid that is not pinned never verifies.
   */
  pinned?: Iterable<PublicKeyRecord> | { data: readonly PublicKeyRecord[] };
  /** Keys known in advance (e.g. persisted from an earlier fetch); unknown kids are still fetched. */
  initialKeys?: Iterable<PublicKeyRecord> | { data: readonly PublicKeyRecord[] };
  /** At most one fetch per this many milliseconds, whatever the number of unknown kids (default 60 000). */
  minRefreshIntervalMs?: number;
  /** Timeout of one fetch of the key set (default 10 000 ms). */
  timeoutMs?: number;
  /** Time source in epoch ms (default Date.now), for the rate limit. */
  now?: () => number;
  headers?: Record<string, string>;
}

export interface KeyCache extends KeyResolver {
  /** The trusted keys held so far. */
  readonly store: PublicKeyStore;
  /** True when the cache only trusts pinned keys and never fetches. */
  readonly pinned: boolean;
  /** How many times the key set was requested from the server. */
  readonly fetchCount: number;
  /**
   * Fetches the key set now, unless one was fetched less than minRefreshIntervalMs ago (or `force`).
   * Returns true when a fetch happened. Never fetches for a pinned cache.
   */
  refresh(opts?: { force?: boolean }): Promise<boolean>;
}

const KEYS_PATH = "/api/v1/system/public-keys";

/**
 * A key cache: answers from its store, and on an unknown kid fetches /api/v1/system/public-keys — at
 * most once per `minRefreshIntervalMs`, concurrent lookups sharing one request. Keys only ever come
 * from that endpoint (or from `pinned` / `initialKeys`), never from a response being verified.
 */
export function createKeyCache(opts: KeyCacheOptions): KeyCache {
  const pinned = opts.pinned !== undefined;
  if (!pinned && !opts.baseUrl) throw new TypeError("createKeyCache needs baseUrl, or pinned keys for offline verification");
  const store = new PublicKeyStore(opts.pinned ?? opts.initialKeys);
  const interval = opts.minRefreshIntervalMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const now = opts.now ?? (() => Date.now());
  const doFetch = opts.fetch ?? ((...args: Parameters<typeof fetch>) => globalThis.fetch(...args));
  const url = opts.baseUrl ? `${opts.baseUrl.replace(/\/+$/, "")}${KEYS_PATH}` : "";
  let lastAttemptAt: number | undefined;
  let lastError: unknown;
  let inflight: Promise<void> | undefined;
  let fetchCount = 0;

  async function load(): Promise<void> {
    fetchCount++;
    lastAttemptAt = now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      let res: Response;
      let text: string;
      try {
        res = await doFetch(url, { method: "GET", headers: { accept: "application/json", ...opts.headers }, signal: controller.signal });
        text = await res.text();
      } catch (err) {
        throw new TransportError({
          message: `could not fetch ${KEYS_PATH}: ${(err as Error)?.message ?? String(err)}`,
          operation: "listPublicKeys",
          cause: err,
          timedOut: controller.signal.aborted,
        });
      }
      // A refusal of the key set is not an answer to the call being verified: report it as "no keys
      // could be loaded" (TransportError), so verification never surfaces an ApiError.
      if (!res.ok) throw new TransportError({ message: `${KEYS_PATH} answered HTTP ${res.status}`, operation: "listPublicKeys" });
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (!isRecord(body) || !Array.isArray(body.data)) {
        throw new TransportError({ message: `${KEYS_PATH} answered a body that is not a key set`, operation: "listPublicKeys" });
      }
      store.add(body.data as PublicKeyRecord[]);
      lastError = undefined;
    } catch (err) {
      lastError = err;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  function fetchOnce(force: boolean): Promise<boolean> {
    if (pinned) return Promise.resolve(false);
    if (inflight) return inflight.then(() => true);
    if (!force && lastAttemptAt !== undefined && now() - lastAttemptAt < interval) {
      if (lastError !== undefined) return Promise.reject(lastError);
      return Promise.resolve(false);
    }
    inflight = load().finally(() => {
      inflight = undefined;
    });
    return inflight.then(() => true);
  }

  return {
    store,
    pinned,
    get fetchCount() {
      return fetchCount;
    },
    refresh(o) {
      return fetchOnce(o?.force === true);
    },
    async resolveKey(kid) {
      if (store.has(kid)) return store.resolveKey(kid);
      if (pinned) return undefined;
      await fetchOnce(false);
      return store.resolveKey(kid);
    },
  };
}

