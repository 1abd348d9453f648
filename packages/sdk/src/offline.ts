// Offline envelopes (docs/offline-format.md, v1): decrypt with WebCrypto (HKDF-SHA256 → AES-256-GCM,
// AAD = kid), verify the inner Ed25519 signature against trusted keys, then check the binding, the
// offline window and the clock. Decryption is not verification: only verifyOfflineLicense says an
// envelope may be trusted.
import { decodeBase64 } from "./base64.js";
import type { operations } from "./generated/openapi.js";
import { type KeySource, type RuntimeSignature, subtle, verifySignedText } from "./verify.js";

/** The four fields of `POST /api/v1/license/offline` → `data`. Store them as they are. */
export interface OfflineEnvelope {
  kid: string;
  salt: string;
  nonce: string;
  ciphertext: string;
}

/** The entitlement every online runtime call returns (validate, activate, check, …). */
export type RuntimeEntitlement = operations["validateLicense"]["responses"][200]["content"]["application/json"]["data"];

/** `data.offline` of an envelope's payload. */
export interface OfflineWindow {
  issued_at: string;
  expires_at: string;
  device_id: string;
  fingerprint?: string;
}

/** The payload inside an envelope: the entitlement plus its offline window. */
export type OfflineEntitlement = RuntimeEntitlement & { offline: OfflineWindow };

export interface DecryptedOfflineEnvelope {
  /** The payload, parsed from exactly the bytes the signature covers. NOT verified yet. */
  data: OfflineEntitlement;
  signature: RuntimeSignature;
  /** The exact signed text (D in the document). */
  signedText: string;
  /** The whole plaintext. */
  plaintext: string;
}

export type OfflineErrorCode =
  | "INVALID_LICENSE_KEY"
  | "MALFORMED_ENVELOPE"
  | "DECRYPTION_FAILED"
  | "FINGERPRINT_MISMATCH"
  | "DEVICE_MISMATCH"
  | "NOT_YET_VALID"
  | "OFFLINE_EXPIRED"
  | "CLOCK_ROLLBACK";

/**
 * An envelope that cannot be used: wrong key or altered container (DECRYPTION_FAILED), malformed,
 * issued for another machine, outside its window, or the clock was set back (CLOCK_ROLLBACK). A bad
 * inner signature is a SignatureVerificationError instead.
 */
export class OfflineLicenseError extends Error {
  override name = "OfflineLicenseError";
  readonly code: OfflineErrorCode;
  constructor(code: OfflineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

const HKDF_INFO = "licensekit/offline/v1";
const CROCKFORD = /^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{32}$/;
const utf8 = new TextEncoder();

/** Step 1: the canonical license key (`lsk_` + 32 Crockford base32 characters), the HKDF input. */
export function canonicalLicenseKey(typed: string): string {
  const t = String(typed).trim();
  if (t.slice(0, 4).toLowerCase() !== "lsk_") throw new OfflineLicenseError("INVALID_LICENSE_KEY", "the license key does not start with lsk_");
  const body = t
    .slice(4)
    .replaceAll("-", "")
    .toUpperCase()
    .replace(/[IL]/g, "1")
    .replaceAll("O", "0");
  if (!CROCKFORD.test(body)) throw new OfflineLicenseError("INVALID_LICENSE_KEY", "the license key is not 32 Crockford base32 characters after lsk_");
  return `lsk_${body}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Accepts the envelope (`data` of the answer) or the whole answer `{data: envelope, meta}`. */
function envelopeOf(input: unknown): OfflineEnvelope {
  const env = isRecord(input) && isRecord(input.data) && !("kid" in input) ? input.data : input;
  if (!isRecord(env)) throw new OfflineLicenseError("MALFORMED_ENVELOPE", "the envelope is not an object");
  for (const f of ["kid", "salt", "nonce", "ciphertext"] as const) {
    if (typeof env[f] !== "string") throw new OfflineLicenseError("MALFORMED_ENVELOPE", `the envelope has no ${f}`);
  }
  return env as unknown as OfflineEnvelope;
}

function field(name: string, value: string, length?: number, min?: number): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = decodeBase64(value);
  } catch (err) {
    throw new OfflineLicenseError("MALFORMED_ENVELOPE", `${name} is not standard base64`, { cause: err });
  }
  if (length !== undefined && bytes.length !== length) throw new OfflineLicenseError("MALFORMED_ENVELOPE", `${name} is not ${length} bytes`);
  if (min !== undefined && bytes.length < min) throw new OfflineLicenseError("MALFORMED_ENVELOPE", `${name} is shorter than ${min} bytes`);
  return bytes;
}

/**
 * Steps 1–5 of docs/offline-format.md: canonicalise the key, decode, derive the AES key with HKDF,
 * decrypt (AES-256-GCM, AAD = kid) and parse. Throws OfflineLicenseError (DECRYPTION_FAILED for a
 * wrong license key or any altered byte). The result is NOT verified: use verifyOfflineLicense.
 */
export async function decryptOfflineEnvelope(envelope: OfflineEnvelope | { data: OfflineEnvelope }, licenseKey: string): Promise<DecryptedOfflineEnvelope> {
  const env = envelopeOf(envelope);
  const canonical = canonicalLicenseKey(licenseKey);
  const salt = field("salt", env.salt, 16);
  const nonce = field("nonce", env.nonce, 12);
  const sealed = field("ciphertext", env.ciphertext, undefined, 16);
  const s = subtle();
  let plainBytes: ArrayBuffer;
  try {
    const ikm = await s.importKey("raw", utf8.encode(canonical), "HKDF", false, ["deriveKey"]);
    const key = await s.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt, info: utf8.encode(HKDF_INFO) },
      ikm,
      { name: "AES-GCM", length: 256 },
      false,
      ["decrypt"],
    );
    // WebCrypto takes the ciphertext followed by its 16-byte tag: exactly the envelope's layout.
    plainBytes = await s.decrypt({ name: "AES-GCM", iv: nonce, additionalData: utf8.encode(env.kid), tagLength: 128 }, key, sealed);
  } catch (err) {
    throw new OfflineLicenseError("DECRYPTION_FAILED", "the envelope does not decrypt: wrong license key, or the envelope was altered", { cause: err });
  }
  let plaintext: string;
  try {
    plaintext = new TextDecoder("utf-8", { fatal: true }).decode(plainBytes);
  } catch (err) {
    throw new OfflineLicenseError("MALFORMED_ENVELOPE", "the payload is not UTF-8", { cause: err });
  }
  const head = '{"data":';
  const end = plaintext.lastIndexOf(',"signature":');
  if (!plaintext.startsWith(head) || end < head.length) throw new OfflineLicenseError("MALFORMED_ENVELOPE", "the payload is not {data, signature}");
  const signedText = plaintext.slice(head.length, end);
  let parsed: unknown;
  let data: unknown;
  try {
    parsed = JSON.parse(plaintext);
    data = JSON.parse(signedText);
  } catch (err) {
    throw new OfflineLicenseError("MALFORMED_ENVELOPE", "the payload is not JSON", { cause: err });
  }
  if (!isRecord(parsed) || !isRecord(data) || !isRecord(data.offline)) throw new OfflineLicenseError("MALFORMED_ENVELOPE", "the payload has no offline window");
  return { data: data as unknown as OfflineEntitlement, signature: parsed.signature as RuntimeSignature, signedText, plaintext };
}

export interface VerifyOfflineLicenseOptions {
  /** The stored envelope (`data` of the offline answer), or the whole answer. */
  envelope: OfflineEnvelope | { data: OfflineEnvelope };
  licenseKey: string;
  /** Trusted keys: a PublicKeyStore (e.g. pinned), a KeyCache, or the public-keys `data` array. */
  keys: KeySource;
  /**
   * The fingerprint this machine computes. When given, the envelope must carry the same
   * `offline.fingerprint`. Omit it only for container bindings issued without one.
   */
  fingerprint?: string;
  /** The device id this machine was given online; when given it must equal `offline.device_id`. */
  deviceId?: string;
  /** The current time (default Date.now()). */
  now?: number | Date;
  /** The latest time seen so far (persisted by the caller); `now` earlier than it is CLOCK_ROLLBACK. */
  lastSeenAt?: number | string | Date | null;
  /** How far `now` may be behind `lastSeenAt` before it counts as a rollback (default 0). */
  rollbackToleranceMs?: number;
  /** How far in the future `offline.issued_at` may be (clock skew; default 5 minutes). */
  clockSkewMs?: number;
}

export interface VerifiedOfflineLicense {
  ok: true;
  data: OfflineEntitlement;
  offline: OfflineWindow;
  kid: string;
  /** End of the offline window, epoch ms. */
  expiresAt: number;
  /** max(now, lastSeenAt), epoch ms: persist it and pass it back next time. */
  lastSeenAt: number;
}

function toMs(v: number | string | Date): number {
  if (typeof v === "number") return v;
  if (v instanceof Date) return v.getTime();
  return Date.parse(v);
}

/**
 * Every step of docs/offline-format.md: decrypt, verify the inner signature (kid must equal the
 * envelope's; SignatureVerificationError on failure), then check the binding, the window
 * (`issued_at ≤ now < offline.expires_at`) and that the clock was not set back before `lastSeenAt`.
 * Throws OfflineLicenseError with FINGERPRINT_MISMATCH, DEVICE_MISMATCH, NOT_YET_VALID,
 * OFFLINE_EXPIRED or CLOCK_ROLLBACK.
 */
export async function verifyOfflineLicense(opts: VerifyOfflineLicenseOptions): Promise<VerifiedOfflineLicense> {
  const env = envelopeOf(opts.envelope);
  const now = toMs(opts.now ?? Date.now());
  if (!Number.isFinite(now)) throw new TypeError("now is not a valid time");
  const decrypted = await decryptOfflineEnvelope(env, opts.licenseKey);
  const kid = await verifySignedText(decrypted.signedText, decrypted.signature, opts.keys, { expectedKid: env.kid, operation: "issueOfflineLicense" });
  const { data } = decrypted;
  const offline = data.offline;

  const seen = opts.lastSeenAt === undefined || opts.lastSeenAt === null ? undefined : toMs(opts.lastSeenAt);
  if (seen !== undefined && Number.isFinite(seen) && now < seen - (opts.rollbackToleranceMs ?? 0)) {
    throw new OfflineLicenseError("CLOCK_ROLLBACK", `the clock reads ${new Date(now).toISOString()}, before the last time seen ${new Date(seen).toISOString()}`);
  }
  if (opts.fingerprint !== undefined && offline.fingerprint !== opts.fingerprint.trim()) {
    throw new OfflineLicenseError("FINGERPRINT_MISMATCH", "the envelope was issued for another machine");
  }
  if (opts.deviceId !== undefined && offline.device_id !== opts.deviceId) {
    throw new OfflineLicenseError("DEVICE_MISMATCH", "the envelope was issued for another device");
  }
  const issuedAt = Date.parse(offline.issued_at);
  const expiresAt = Date.parse(offline.expires_at);
  if (!Number.isFinite(issuedAt) || !Number.isFinite(expiresAt)) throw new OfflineLicenseError("MALFORMED_ENVELOPE", "the offline window has no valid times");
  if (now < issuedAt - (opts.clockSkewMs ?? 5 * 60_000)) {
    throw new OfflineLicenseError("NOT_YET_VALID", `the envelope was issued at ${offline.issued_at}, in this machine's future`);
  }
  if (now >= expiresAt) throw new OfflineLicenseError("OFFLINE_EXPIRED", `the offline window ended at ${offline.expires_at}`);
  return { ok: true, data, offline, kid, expiresAt, lastSeenAt: seen !== undefined && Number.isFinite(seen) ? Math.max(now, seen) : now };
}
