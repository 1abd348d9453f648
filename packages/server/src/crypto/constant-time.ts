// Comparing secret material (webhook secrets, MACs, check values) in constant time. Both sides are
// first reduced to SHA-256 digests, so the comparison takes the same time whatever the inputs'
// lengths and wherever they first differ, and crypto.timingSafeEqual never sees unequal lengths.
// Credentials themselves are never compared: license keys, management tokens and lease tokens are
// looked up by their keyed hash (crypto/credential-hash.ts), so no byte of a guess meets a stored
// secret in JavaScript.
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (v: string | Buffer) => createHash("sha256").update(v).digest();

export function secretsEqual(a: string | Buffer, b: string | Buffer): boolean {
  return timingSafeEqual(digest(a), digest(b));
}
