// The pool of random bytes behind ids, request ids and AES-GCM nonces (crypto/random-pool.ts):
// every take is fresh across many refills (no byte range handed out twice), takes are copies the
// pool does not overwrite later, sizes outside 1..64 are refused, and sealed values still open.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { open, seal } from "../src/crypto/aead.js";
import { pooledRandomBase64url, pooledRandomBytes } from "../src/crypto/random-pool.js";
import { newId, newRequestId } from "../src/ids.js";

describe("pooled random bytes", () => {
  it("hands out distinct values across many refills, as copies", () => {
    const seen = new Set<string>();
    const kept: [Buffer, string][] = [];
    // 20,000 × 12 bytes ≈ 59 refills of the 4 KiB pool; sizes vary so takes straddle refill points.
    for (let i = 0; i < 20_000; i++) {
      const b = pooledRandomBytes(12 + (i % 5));
      const hex = b.toString("hex");
      assert.ok(!seen.has(hex), `value repeated at take ${i}`);
      seen.add(hex);
      if (i % 1000 === 0) kept.push([b, hex]);
    }
    for (const [b, hex] of kept) assert.equal(b.toString("hex"), hex, "a take must not change when the pool refills");
    const texts = new Set(Array.from({ length: 5000 }, () => pooledRandomBase64url(15)));
    assert.equal(texts.size, 5000);
  });

  it("refuses sizes it is not for", () => {
    for (const n of [0, -1, 65, 1.5, Number.NaN]) assert.throws(() => pooledRandomBytes(n), RangeError);
  });

  it("ids, request ids and sealed values built on it stay unique and usable", () => {
    const ids = new Set(Array.from({ length: 5000 }, () => newId("dev")));
    assert.equal(ids.size, 5000);
    const reqs = new Set(Array.from({ length: 5000 }, () => newRequestId()));
    assert.equal(reqs.size, 5000);
    for (const r of reqs) assert.match(r, /^req_[A-Za-z0-9_-]{20}$/);
    const key = Buffer.alloc(32, 7);
    const sealed = Array.from({ length: 100 }, (_, i) => seal(key, Buffer.from(`answer ${i}`), "rec"));
    assert.equal(new Set(sealed.map((s) => s.slice(0, 16))).size, 100, "every nonce differs");
    for (const [i, s] of sealed.entries()) assert.equal(open(key, s, "rec").toString(), `answer ${i}`);
  });
});
