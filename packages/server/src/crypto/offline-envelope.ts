// Offline envelopes (D5, docs/offline-format.md): a signed runtime payload encrypted under a key
// derived from the license key. HKDF-SHA256(IKM = canonical license key as UTF-8, salt = 16 random
// bytes, info = "licensekit/offline/v1", 32 bytes) → AES-256-GCM with a 12-byte random nonce and the
// UTF-8 bytes of `kid` as associated data; `ciphertext` = base64(encrypted bytes ‖ 16-byte tag).
// `sealOffline` is what the server issues; `openOffline` is the reference decoder (tests, SDKs).
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

export const OFFLINE_INFO = "licensekit/offline/v1";
export const OFFLINE_KEY_BYTES = 32;
export const OFFLINE_SALT_BYTES = 16;
export const OFFLINE_NONCE_BYTES = 12;
export const OFFLINE_TAG_BYTES = 16;

/** The wire `data` of POST /api/v1/license/offline (contract OfflineEnvelope); every binary field is standard base64. */
export interface OfflineEnvelope {
  kid: string;
  salt: string;
  nonce: string;
  ciphertext: string;
}

/** The AES-256-GCM key for one envelope: HKDF-SHA256 over the canonical license key. */
export function deriveOfflineKey(licenseKey: string, salt: Buffer): Buffer {
  if (salt.length !== OFFLINE_SALT_BYTES) throw new Error(`offline salt must be ${OFFLINE_SALT_BYTES} bytes`);
  return Buffer.from(hkdfSync("sha256", Buffer.from(licenseKey, "utf8"), salt, Buffer.from(OFFLINE_INFO, "utf8"), OFFLINE_KEY_BYTES));
}

/**
 * Encrypts `plaintext` (the JSON text `{"data":…,"signature":…}`) for the holder of `licenseKey`.
 * `random` fixes salt and nonce (test vectors only); never reuse a nonce with the same key.
 */
export function sealOffline(licenseKey: string, kid: string, plaintext: string | Buffer, random?: { salt: Buffer; nonce: Buffer }): OfflineEnvelope {
  const salt = random?.salt ?? randomBytes(OFFLINE_SALT_BYTES);
  const nonce = random?.nonce ?? randomBytes(OFFLINE_NONCE_BYTES);
  if (nonce.length !== OFFLINE_NONCE_BYTES) throw new Error(`offline nonce must be ${OFFLINE_NONCE_BYTES} bytes`);
  const cipher = createCipheriv("aes-256-gcm", deriveOfflineKey(licenseKey, salt), nonce, { authTagLength: OFFLINE_TAG_BYTES });
  cipher.setAAD(Buffer.from(kid, "utf8"));
  const body = typeof plaintext === "string" ? Buffer.from(plaintext, "utf8") : plaintext;
  const encrypted = Buffer.concat([cipher.update(body), cipher.final(), cipher.getAuthTag()]);
  return { kid, salt: salt.toString("base64"), nonce: nonce.toString("base64"), ciphertext: encrypted.toString("base64") };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function strictBase64(field: string, value: string): Buffer {
  if (typeof value !== "string" || !BASE64.test(value)) throw new Error(`offline envelope ${field} is not standard padded base64`);
  return Buffer.from(value, "base64");
}

/**
 * Decrypts an envelope with the canonical license key and returns the plaintext bytes (JSON
 * `{data, signature}`). Throws when any field is malformed or authentication fails (wrong key, or a
 * changed kid, salt, nonce or ciphertext). Decryption is not verification: check the inner signature.
 */
export function openOffline(licenseKey: string, env: OfflineEnvelope): Buffer {
  const salt = strictBase64("salt", env.salt);
  const nonce = strictBase64("nonce", env.nonce);
  const sealed = strictBase64("ciphertext", env.ciphertext);
  if (salt.length !== OFFLINE_SALT_BYTES) throw new Error(`offline envelope salt must be ${OFFLINE_SALT_BYTES} bytes`);
  if (nonce.length !== OFFLINE_NONCE_BYTES) throw new Error(`offline envelope nonce must be ${OFFLINE_NONCE_BYTES} bytes`);
  if (sealed.length < OFFLINE_TAG_BYTES) throw new Error("offline envelope ciphertext is shorter than its tag");
  const decipher = createDecipheriv("aes-256-gcm", deriveOfflineKey(licenseKey, salt), nonce, { authTagLength: OFFLINE_TAG_BYTES });
  decipher.setAAD(Buffer.from(env.kid, "utf8"));
  decipher.setAuthTag(sealed.subarray(sealed.length - OFFLINE_TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - OFFLINE_TAG_BYTES)), decipher.final()]);
}
