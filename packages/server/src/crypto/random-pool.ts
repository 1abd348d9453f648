// Random bytes for ids and nonces, handed out from a pool of CSPRNG output refilled 4 KiB at a
// time. `randomBytes(n)` costs a call into OpenSSL's generator each time (measured at ~6 µs per
// call in the activate profile, twice per write: the device id and the sealed answer's nonce);
// the pool makes that one call per refill. Every byte is handed out once. Not for keys or
// secrets a caller keeps (those use randomBytes directly).
import { randomFillSync } from "node:crypto";

const POOL_BYTES = 4096;
/** Larger requests would waste most of a refill; they are not what the pool is for. */
const MAX_TAKE = 64;

const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

function reserve(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_TAKE) throw new RangeError(`pooled random bytes: 1..${MAX_TAKE}, got ${n}`);
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const at = offset;
  offset += n;
  return at;
}

/** `n` (1..64) fresh random bytes, copied out of the pool. */
export function pooledRandomBytes(n: number): Buffer {
  const at = reserve(n);
  return Buffer.from(pool.subarray(at, at + n));
}

/** `n` fresh random bytes as base64url text (no intermediate buffer). */
export function pooledRandomBase64url(n: number): string {
  const at = reserve(n);
  return pool.toString("base64url", at, at + n);
}
