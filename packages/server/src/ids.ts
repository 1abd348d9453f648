// Identifiers and credentials (D9): time-sortable resource ids, license keys, management tokens.
import { randomBytes, randomInt } from "node:crypto";
import { pooledRandomBase64url, pooledRandomBytes } from "./crypto/random-pool.js";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

export type IdPrefix =
  | "prod"
  | "pol"
  | "feat"
  | "ver"
  | "cust"
  | "lic"
  | "dev"
  | "sub"
  | "ord"
  | "fld"
  | "key"
  | "whk"
  | "rptx"
  | "evt"
  | "lse"
  | "whd";

let lastMs = -1;
let lastRandom: number[] = [];

/**
 * `<prefix>_` + 26 Crockford characters: 48-bit millisecond time then 80 random bits (ULID layout).
 * Within one millisecond the random part is incremented, so ids from one process sort in creation order.
 */
export function newId(prefix: IdPrefix, nowMs: number = Date.now()): string {
  let rand: number[];
  if (nowMs <= lastMs) {
    rand = lastRandom.slice();
    for (let i = rand.length - 1; i >= 0; i--) {
      if (rand[i]! < 31) {
        rand[i]!++;
        break;
      }
      rand[i] = 0;
    }
    nowMs = lastMs;
  } else {
    const bytes = pooledRandomBytes(16);
    rand = Array.from({ length: 16 }, (_, i) => bytes[i]! & 31);
    // keep headroom in the top character so increments never overflow
    rand[0] = rand[0]! & 15;
  }
  lastMs = nowMs;
  lastRandom = rand;
  let time = "";
  let t = nowMs;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return `${prefix}_${time}${rand.map((r) => CROCKFORD[r]).join("")}`;
}

function randomString(alphabet: string, length: number): string {
  let s = "";
  for (let i = 0; i < length; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

/** `lsk_` + 32 Crockford base32 characters = 160 random bits. */
export function newLicenseKey(): string {
  const bytes = randomBytes(20);
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += CROCKFORD[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return `lsk_${out}`;
}

/**
 * Canonical form of a license key as typed by a person: trimmed, the body upper-cased, and Crockford's
 * look-alikes folded (I and L to 1, O to 0), hyphens dropped. Returns null when it cannot be a key.
 */
export function normalizeLicenseKey(raw: string): string | null {
  const t = raw.trim();
  if (!/^lsk_/i.test(t)) return null;
  const body = t
    .slice(4)
    .replace(/-/g, "")
    .toUpperCase()
    .replace(/[IL]/g, "1")
    .replace(/O/g, "0");
  if (!/^[0-9A-HJKMNP-TV-Z]{32}$/.test(body)) return null;
  return `lsk_${body}`;
}

/** `lkm_` + 40 base62 characters (~238 bits). */
export function newManagementToken(): string {
  return `lkm_${randomString(BASE62, 40)}`;
}

/** Webhook signing secret (D9): `whsec_` + 32 base62 characters (~190 bits). */
export function newWebhookSecret(): string {
  return `whsec_${randomString(BASE62, 32)}`;
}

/** `llt_` + 128 random bits, base62. */
export function newLeaseToken(): string {
  return `llt_${randomString(BASE62, 22)}`;
}

/** `req_` + 20 base64url characters (120 random bits; not secret, only unique), cut from the random pool. */
export function newRequestId(): string {
  return `req_${pooledRandomBase64url(15)}`;
}
