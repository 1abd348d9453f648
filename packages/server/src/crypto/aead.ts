// AES-256-GCM sealing for secrets at rest: base64(nonce(12) ‖ ciphertext ‖ tag(16)).
import { createCipheriv, createDecipheriv } from "node:crypto";
import { pooledRandomBytes } from "./random-pool.js";

export function seal(key: Buffer, plaintext: Buffer, aad: string): string {
  const nonce = pooledRandomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, ct, cipher.getAuthTag()]).toString("base64");
}

export function open(key: Buffer, sealed: string, aad: string): Buffer {
  const buf = Buffer.from(sealed, "base64");
  if (buf.length < 28) throw new Error("sealed value is too short");
  const nonce = buf.subarray(0, 12);
  const tag = buf.subarray(buf.length - 16);
  const ct = buf.subarray(12, buf.length - 16);
  const decipher = createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAAD(Buffer.from(aad, "utf8"));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ct), decipher.final()]);
}
