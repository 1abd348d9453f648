// Offline envelopes: the test vector of docs/offline-format.md and real envelopes from a server
// (SQLite, a local port) decrypt and verify with the SDK; a wrong license key, any altered byte, a
// forged inner signature, another machine's fingerprint, the end of the window and a clock set back
// are each refused with their own error.
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type Harness, issueLicense, listen, postRuntime, startHarness } from "../../server/test/helpers/harness.js";
import { decodeBase64, encodeBase64 } from "../src/base64.js";
import { ApiError, SignatureVerificationError } from "../src/errors.js";
import {
  canonicalLicenseKey,
  decryptOfflineEnvelope,
  type OfflineEnvelope,
  OfflineLicenseError,
  verifyOfflineLicense,
} from "../src/offline.js";
import { createKeyCache, type PublicKeyRecord, PublicKeyStore } from "../src/verify.js";

// biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
type Json = any;

const DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs/offline-format.md");
const HOUR = 3_600_000;
const DAY = 86_400_000;

function docBlock(doc: string, tag: string): string {
  const m = new RegExp("```\\w+ " + tag + "\\n([\\s\\S]*?)\\n```").exec(doc);
  assert.ok(m, `docs/offline-format.md has a ${tag} block`);
  return m[1]!;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof OfflineLicenseError, `expected OfflineLicenseError ${code}, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
    assert.equal(err.code, code);
    return true;
  });
}

async function rejectsTampered(p: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SignatureVerificationError, `expected SignatureVerificationError, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
    assert.ok(!(err instanceof ApiError));
    assert.equal(err.reason, reason);
    return true;
  });
}

/** A copy of a base64 field with byte `i` flipped. */
function flipByte(s: string, i: number): string {
  const b = decodeBase64(s);
  b[i] = b[i]! ^ 0x01;
  return encodeBase64(b);
}

/** Builds an envelope the way the server does (anyone with the license key can): HKDF + AES-256-GCM. */
async function seal(licenseKey: string, kid: string, plaintext: string): Promise<OfflineEnvelope> {
  const s = webcrypto.subtle;
  const salt = webcrypto.getRandomValues(new Uint8Array(16));
  const nonce = webcrypto.getRandomValues(new Uint8Array(12));
  const ikm = await s.importKey("raw", new TextEncoder().encode(licenseKey), "HKDF", false, ["deriveKey"]);
  const key = await s.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt, info: new TextEncoder().encode("licensekit/offline/v1") },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt"],
  );
  const ct = await s.encrypt({ name: "AES-GCM", iv: nonce, additionalData: new TextEncoder().encode(kid) }, key, new TextEncoder().encode(plaintext));
  return { kid, salt: encodeBase64(salt), nonce: encodeBase64(nonce), ciphertext: encodeBase64(new Uint8Array(ct)) };
}

describe("docs/offline-format.md test vector", () => {
  const doc = fs.readFileSync(DOC, "utf8");
  const key = docBlock(doc, "offline-vector-license-key").trim();
  const keys: PublicKeyRecord[] = JSON.parse(docBlock(doc, "offline-vector-public-keys"));
  const answer = JSON.parse(docBlock(doc, "offline-vector-answer"));
  const typed = /Authorization header the device actually sent: `License (\S+)`/.exec(doc)?.[1] ?? "";

  it("decrypts to the documented plaintext, with the canonical key or the typed spelling", async () => {
    assert.equal(canonicalLicenseKey(typed), key);
    const out = await decryptOfflineEnvelope(answer.data, key);
    assert.equal(out.plaintext, docBlock(doc, "offline-vector-plaintext"));
    assert.equal(JSON.stringify(out.data), out.signedText);
    assert.equal(out.signature.kid, answer.data.kid);
    // The SDK canonicalises the key as a person types it (step 1), and accepts the whole answer.
    assert.equal((await decryptOfflineEnvelope(answer, `  ${typed} `)).plaintext, out.plaintext);
  });

  it("verifies with pinned keys, fully offline", async () => {
    const cache = createKeyCache({
      pinned: keys,
      fetch: () => {
        throw new Error("no fetch offline");
      },
    });
    const v = await verifyOfflineLicense({ envelope: answer.data, licenseKey: typed, keys: cache, fingerprint: "vector-device-01", now: Date.parse("2026-03-02T00:00:00Z") });
    assert.equal(v.ok, true);
    assert.equal(v.data.license_id, "lic_01KJMMA2G0FCKPVDJYZVH4Z73R");
    assert.equal(v.offline.expires_at, "2026-03-05T00:00:00.000Z");
    assert.equal(v.expiresAt, Date.parse("2026-03-05T00:00:00.000Z"));
    assert.equal(v.kid, "k_FjP0-oXxfHxhh8x5");
    assert.deepEqual(v.data.features, [{ code: "pdf.export", enabled: true, quota: 500, consumed: 0, remaining: 500 }]);
    await rejectsWith(verifyOfflineLicense({ envelope: answer.data, licenseKey: key, keys, fingerprint: "vector-device-01", now: Date.parse("2026-03-05T00:00:00Z") }), "OFFLINE_EXPIRED");
  });

  it("refuses malformed license keys and envelopes", async () => {
    await rejectsWith(decryptOfflineEnvelope(answer.data, "not-a-key"), "INVALID_LICENSE_KEY");
    await rejectsWith(decryptOfflineEnvelope(answer.data, "lsk_TOOSHORT"), "INVALID_LICENSE_KEY");
    await rejectsWith(decryptOfflineEnvelope(answer.data, "lsk_UUUUUUUUUUUUUUUUUUUUUUUUUUUUUUUU"), "INVALID_LICENSE_KEY"); // U is not Crockford
    await rejectsWith(decryptOfflineEnvelope({ ...answer.data, salt: answer.data.salt.replace(/=+$/, "") }, key), "MALFORMED_ENVELOPE");
    await rejectsWith(decryptOfflineEnvelope({ ...answer.data, salt: encodeBase64(new Uint8Array(15)) }, key), "MALFORMED_ENVELOPE");
    await rejectsWith(decryptOfflineEnvelope({ ...answer.data, nonce: encodeBase64(new Uint8Array(16)) }, key), "MALFORMED_ENVELOPE");
    await rejectsWith(decryptOfflineEnvelope({ ...answer.data, ciphertext: encodeBase64(new Uint8Array(15)) }, key), "MALFORMED_ENVELOPE");
    await rejectsWith(decryptOfflineEnvelope({ kid: "k" } as Json, key), "MALFORMED_ENVELOPE");
    await rejectsWith(decryptOfflineEnvelope(null as Json, key), "MALFORMED_ENVELOPE");
  });
});

describe("real offline envelopes", () => {
  let h: Harness;
  let baseUrl: string;
  let key: string;
  let licenseId: string;
  let keys: PublicKeyRecord[];
  let envelope: OfflineEnvelope;
  let issuedAt: number;
  const fingerprint = "offline-host-1";

  before(async () => {
    h = await startHarness("sqlite");
    baseUrl = await listen(h);
    ({ key, licenseId } = await issueLicense(h, { max_activations: 2, allow_offline_activation: true, offline_grace_days: 7 }));
    const act = await postRuntime(baseUrl, "/api/v1/license/activate", key, { fingerprint, hostname: "host-1" }, "act-offline-1");
    assert.equal(act.status, 200, act.text);
    const off = await postRuntime(baseUrl, "/api/v1/license/offline", key, { fingerprint });
    assert.equal(off.status, 200, off.text);
    envelope = off.json.data;
    issuedAt = h.clock.now();
    keys = ((await (await fetch(`${baseUrl}/api/v1/system/public-keys`)).json()) as Json).data;
  });
  after(async () => {
    await h?.close();
  });

  it("decrypts and verifies: the entitlement, the binding and a 7-day window", async () => {
    const v = await verifyOfflineLicense({ envelope, licenseKey: key, keys: new PublicKeyStore(keys), fingerprint, now: issuedAt + HOUR });
    assert.equal(v.data.license_id, licenseId);
    assert.equal(v.data.status, "active");
    assert.equal(v.offline.fingerprint, fingerprint);
    assert.equal(v.offline.device_id, v.data.device_id);
    assert.equal(v.expiresAt, issuedAt + 7 * DAY);
    assert.equal(v.lastSeenAt, issuedAt + HOUR);
    // With a key cache that loads the keys from the server.
    const cache = createKeyCache({ baseUrl });
    const w = await verifyOfflineLicense({ envelope, licenseKey: key, keys: cache, fingerprint: `  ${fingerprint} `, deviceId: v.data.device_id, now: issuedAt });
    assert.equal(w.kid, envelope.kid);
    assert.equal(cache.fetchCount, 1);
  });

  it("a wrong license key, or any altered byte of kid, salt, nonce or ciphertext, does not decrypt", async () => {
    const other = await issueLicense(h);
    await rejectsWith(decryptOfflineEnvelope(envelope, other.key), "DECRYPTION_FAILED");
    await rejectsWith(verifyOfflineLicense({ envelope, licenseKey: other.key, keys, fingerprint, now: issuedAt }), "DECRYPTION_FAILED");
    await rejectsWith(decryptOfflineEnvelope({ ...envelope, kid: `${envelope.kid}x` }, key), "DECRYPTION_FAILED");
    await rejectsWith(decryptOfflineEnvelope({ ...envelope, salt: flipByte(envelope.salt, 3) }, key), "DECRYPTION_FAILED");
    await rejectsWith(decryptOfflineEnvelope({ ...envelope, nonce: flipByte(envelope.nonce, 11) }, key), "DECRYPTION_FAILED");
    const n = decodeBase64(envelope.ciphertext).length;
    for (const i of [0, 1, Math.floor(n / 2), n - 17, n - 16, n - 1]) {
      await rejectsWith(decryptOfflineEnvelope({ ...envelope, ciphertext: flipByte(envelope.ciphertext, i) }, key), "DECRYPTION_FAILED");
    }
  });

  it("an envelope built by the license holder (not the server) fails the inner signature", async () => {
    const genuine = await decryptOfflineEnvelope(envelope, key);
    // Same signature, altered payload (the license key holder can re-encrypt anything).
    const longer = genuine.plaintext.replace(genuine.data.offline.expires_at, "2099-01-01T00:00:00.000Z");
    assert.notEqual(longer, genuine.plaintext);
    await rejectsTampered(verifyOfflineLicense({ envelope: await seal(key, envelope.kid, longer), licenseKey: key, keys, fingerprint, now: issuedAt }), "bad_signature");
    // Signed by an attacker's key under a kid the server never published.
    const attacker = (await webcrypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const data = JSON.stringify({ ...genuine.data, offline: { ...genuine.data.offline, expires_at: "2099-01-01T00:00:00.000Z" } });
    const value = encodeBase64(new Uint8Array(await webcrypto.subtle.sign({ name: "Ed25519" }, attacker.privateKey, new TextEncoder().encode(data))));
    const forgedKid = "k_attacker0000000";
    const forged = await seal(key, forgedKid, `{"data":${data},"signature":${JSON.stringify({ alg: "Ed25519", kid: forgedKid, value })}}`);
    let fetches = 0;
    const cache = createKeyCache({
      baseUrl,
      fetch: (i, init) => {
        fetches++;
        return fetch(i, init);
      },
    });
    await rejectsTampered(verifyOfflineLicense({ envelope: forged, licenseKey: key, keys: cache, fingerprint, now: issuedAt }), "unknown_kid");
    assert.equal(fetches, 1);
    // The inner signature must name the envelope's kid.
    const mismatched = await seal(key, envelope.kid, `{"data":${data},"signature":${JSON.stringify({ alg: "Ed25519", kid: forgedKid, value })}}`);
    await rejectsTampered(verifyOfflineLicense({ envelope: mismatched, licenseKey: key, keys, fingerprint, now: issuedAt }), "kid_mismatch");
    const wrongAlg = await seal(key, envelope.kid, genuine.plaintext.replace('"alg":"Ed25519"', '"alg":"none"'));
    await rejectsTampered(verifyOfflineLicense({ envelope: wrongAlg, licenseKey: key, keys, fingerprint, now: issuedAt }), "unsupported_alg");
    // Re-sealing the genuine plaintext is fine: authenticity comes from the signature, not the container.
    const resealed = await seal(key, envelope.kid, genuine.plaintext);
    assert.equal((await verifyOfflineLicense({ envelope: resealed, licenseKey: key, keys, fingerprint, now: issuedAt })).ok, true);
  });

  it("another machine's fingerprint or device is refused", async () => {
    await rejectsWith(verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint: "offline-host-2", now: issuedAt }), "FINGERPRINT_MISMATCH");
    await rejectsWith(verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, deviceId: "dev_other", now: issuedAt }), "DEVICE_MISMATCH");
  });

  it("the window: valid until just before offline.expires_at, refused from it on, and not before issue", async () => {
    const end = issuedAt + 7 * DAY;
    assert.equal((await verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: end - 1 })).ok, true);
    await rejectsWith(verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: end }), "OFFLINE_EXPIRED");
    await rejectsWith(verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: new Date(end + 30 * DAY) }), "OFFLINE_EXPIRED");
    assert.equal((await verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: issuedAt - 60_000 })).ok, true, "small skew allowed");
    await rejectsWith(verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: issuedAt - HOUR }), "NOT_YET_VALID");
  });

  it("detects a clock set back, and returns the monotonic last-seen time to persist", async () => {
    let lastSeenAt: number | undefined;
    for (const t of [issuedAt + HOUR, issuedAt + 2 * HOUR, issuedAt + 5 * HOUR]) {
      ({ lastSeenAt } = await verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: t, lastSeenAt }));
      assert.equal(lastSeenAt, t);
    }
    // The user winds the clock back two hours to stretch the window: refused.
    await rejectsWith(verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: issuedAt + 3 * HOUR, lastSeenAt }), "CLOCK_ROLLBACK");
    await rejectsWith(verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: issuedAt + 3 * HOUR, lastSeenAt: new Date(lastSeenAt!).toISOString() }), "CLOCK_ROLLBACK");
    // A tolerance can be allowed; the persisted value never moves backwards.
    const tolerated = await verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: lastSeenAt! - 1000, lastSeenAt, rollbackToleranceMs: 5000 });
    assert.equal(tolerated.lastSeenAt, lastSeenAt);
    // Even a clock wound back to inside the window (otherwise valid) is refused.
    await rejectsWith(verifyOfflineLicense({ envelope, licenseKey: key, keys, fingerprint, now: issuedAt, lastSeenAt: issuedAt + 8 * DAY }), "CLOCK_ROLLBACK");
  });
});
