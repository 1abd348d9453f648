// Verification against a real server (SQLite, a local port): activate/validate answers and signed
// error envelopes verify; one changed character of data, signature.value or kid is always a
// SignatureVerificationError (never an ApiError, never a valid result); the key cache fetches the
// key set on an unknown kid at most once per interval; a key carried in a response is ignored;
// pinned keys verify with no fetch at all; base64 is strict.
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { ADMIN_TOKEN, type Harness, issueLicense, listen, postRuntime, startHarness } from "../../server/test/helpers/harness.js";
import { Base64Error, decodeBase64, encodeBase64 } from "../src/base64.js";
import { ApiError, SignatureVerificationError, TransportError } from "../src/errors.js";
import { RuntimeClient } from "../src/runtime.js";
import { SystemClient } from "../src/system.js";
import {
  createKeyCache,
  type PublicKeyRecord,
  PublicKeyStore,
  type SignedErrorEnvelope,
  type SignedRuntimeResult,
  verifyRuntimeError,
  verifyRuntimeResult,
} from "../src/verify.js";

// biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
type Json = any;

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Another base64 character than `c` (a one-character change). */
function otherChar(c: string): string {
  const i = B64.indexOf(c);
  return B64[(i + 1) % 64]!;
}

function replaceAt(s: string, i: number, c: string): string {
  return s.slice(0, i) + c + s.slice(i + 1);
}

/** Every way to change one character of a string: each position to a different character. */
function oneCharChanges(s: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    const repl = /[A-Za-z0-9+/]/.test(c) ? otherChar(c) : c === "=" ? "A" : "x";
    out.push(replaceAt(s, i, repl));
  }
  return out;
}

/** Asserts the promise rejects with a SignatureVerificationError (never an ApiError, never a value). */
async function assertTampered(p: Promise<unknown>, reason?: string | RegExp): Promise<SignatureVerificationError> {
  let settled: unknown;
  try {
    settled = await p;
  } catch (err) {
    assert.ok(err instanceof SignatureVerificationError, `expected SignatureVerificationError, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
    assert.ok(!(err instanceof ApiError));
    if (typeof reason === "string") assert.equal(err.reason, reason);
    else if (reason) assert.match(err.reason, reason);
    return err;
  }
  assert.fail(`a tampered answer verified: ${JSON.stringify(settled)}`);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

async function getJson(url: string): Promise<Json> {
  const res = await fetch(url);
  return res.json();
}

describe("verification against a real server", () => {
  let h: Harness;
  let baseUrl: string;
  let key: string;
  let licenseId: string;
  let keys: PublicKeyRecord[];
  let activated: Json;
  let validated: Json;
  let denied: Json;

  before(async () => {
    h = await startHarness("sqlite");
    baseUrl = await listen(h);
    ({ key, licenseId } = await issueLicense(h, { max_activations: 3 }));
    const act = await postRuntime(baseUrl, "/api/v1/license/activate", key, { fingerprint: "verify-host-1", hostname: "h1" }, "act-verify-1");
    assert.equal(act.status, 200, act.text);
    activated = act.json;
    const val = await postRuntime(baseUrl, "/api/v1/license/validate", key, { fingerprint: "verify-host-1" });
    assert.equal(val.status, 200, val.text);
    validated = val.json;
    // A signed denial: a second license, suspended.
    const other = await issueLicense(h);
    const s = await h.request({ url: `/api/v1/licenses/${other.licenseId}/suspend`, body: {}, token: ADMIN_TOKEN });
    assert.equal(s.status, 200, s.text);
    const den = await postRuntime(baseUrl, "/api/v1/license/validate", other.key, { fingerprint: "verify-host-2" });
    assert.equal(den.status, 403);
    denied = den.json;
    keys = (await getJson(`${baseUrl}/api/v1/system/public-keys`)).data;
  });
  after(async () => {
    await h?.close();
  });

  it("verifies activate and validate answers with a PublicKeyStore built from /api/v1/system/public-keys", async () => {
    const store = new PublicKeyStore(keys);
    assert.equal(store.size, 1);
    const a = await verifyRuntimeResult(activated as SignedRuntimeResult<{ license_id: string }>, store);
    assert.equal(a.ok, true);
    assert.equal(a.data.license_id, licenseId);
    assert.equal(a.kid, activated.signature.kid);
    const v = await verifyRuntimeResult<{ status: string }>(validated, store);
    assert.equal(v.data.status, "active");
    // The whole answer of listPublicKeys and the plain array work too.
    assert.equal((await verifyRuntimeResult(validated, new PublicKeyStore({ data: keys }))).ok, true);
    assert.equal((await verifyRuntimeResult(validated, keys)).ok, true);
  });

  it("verifies a signed error envelope (and an object carrying it as body, like ApiError)", async () => {
    assert.equal(denied.error.code, "LICENSE_INACTIVE");
    const r = await verifyRuntimeError(denied as SignedErrorEnvelope, new PublicKeyStore(keys));
    assert.equal(r.ok, true);
    assert.equal(r.error.code, "LICENSE_INACTIVE");
    const apiErr = new ApiError({ status: 403, body: denied, operation: "validateLicense" });
    assert.equal((await verifyRuntimeError(apiErr, keys)).error.code, "LICENSE_INACTIVE");
  });

  it("one changed character of data, anywhere, is a SignatureVerificationError", async () => {
    const store = new PublicKeyStore(keys);
    const d = validated.data;
    let cases = 0;
    for (const field of ["license_id", "status", "license_type", "issued_at", "next_check_at", "expires_at", "device_id"]) {
      if (typeof d[field] !== "string") continue;
      for (const changed of oneCharChanges(d[field])) {
        const t = clone(validated);
        t.data[field] = changed;
        await assertTampered(verifyRuntimeResult(t, store), "bad_signature");
        cases++;
      }
    }
    const t = clone(validated);
    t.data.entitlement_version += 1;
    await assertTampered(verifyRuntimeResult(t, store), "bad_signature");
    const added = clone(validated);
    added.data.extra = true;
    await assertTampered(verifyRuntimeResult(added, store), "bad_signature");
    // The error envelope: its code, message and detail are covered too.
    for (const field of ["code", "message", "detail"]) {
      for (const changed of oneCharChanges(denied.error[field]).slice(0, 12)) {
        const e = clone(denied);
        e.error[field] = changed;
        await assertTampered(verifyRuntimeError(e, store), "bad_signature");
        cases++;
      }
    }
    assert.ok(cases > 100);
  });

  it("one changed character of signature.value, at every position, is a SignatureVerificationError", async () => {
    const store = new PublicKeyStore(keys);
    const value: string = validated.signature.value;
    assert.equal(value.length, 88);
    for (const changed of oneCharChanges(value)) {
      const t = clone(validated);
      t.signature.value = changed;
      await assertTampered(verifyRuntimeResult(t, store), /^(bad_signature|malformed_signature)$/);
      const e = clone(denied);
      e.signature.value = changed;
      await assertTampered(verifyRuntimeError(e, store), /^(bad_signature|malformed_signature)$/);
    }
    // Another answer's (valid) signature does not fit this data.
    const swapped = clone(validated);
    swapped.signature = denied.signature;
    await assertTampered(verifyRuntimeResult(swapped, store), "bad_signature");
  });

  it("one changed character of kid, alg changes and a missing signature are SignatureVerificationErrors", async () => {
    let fetches = 0;
    const cache = createKeyCache({
      baseUrl,
      fetch: (input, init) => {
        fetches++;
        return fetch(input, init);
      },
      minRefreshIntervalMs: 3_600_000,
    });
    assert.equal((await verifyRuntimeResult(validated, cache)).ok, true);
    assert.equal(fetches, 1);
    for (const changed of oneCharChanges(validated.signature.kid)) {
      const t = clone(validated);
      t.signature.kid = changed;
      await assertTampered(verifyRuntimeResult(t, cache), "unknown_kid");
      const e = clone(denied);
      e.signature.kid = changed;
      await assertTampered(verifyRuntimeError(e, cache), "unknown_kid");
    }
    assert.equal(fetches, 1, "unknown kids inside the interval do not refetch");
    for (const alg of ["ed25519", "EdDSA", "HS256", "none", ""]) {
      const t = clone(validated);
      t.signature.alg = alg;
      await assertTampered(verifyRuntimeResult(t, cache), "unsupported_alg");
    }
    const none = clone(validated);
    delete none.signature;
    await assertTampered(verifyRuntimeResult(none, cache), "missing_signature");
    const nullSig = clone(denied);
    nullSig.signature = null;
    await assertTampered(verifyRuntimeError(nullSig, cache), "missing_signature");
    await assertTampered(verifyRuntimeResult({ signature: validated.signature } as Json, cache), "malformed_payload");
    await assertTampered(verifyRuntimeError({ body: "<html>" }, cache), "malformed_payload");
  });

  it("the key cache fetches on an unknown kid at most once per interval, sharing one request", async () => {
    let now = 1_000_000;
    let fetches = 0;
    const cache = createKeyCache({
      baseUrl,
      fetch: (input, init) => {
        fetches++;
        return fetch(input, init);
      },
      minRefreshIntervalMs: 60_000,
      now: () => now,
    });
    // Five concurrent verifications with an empty cache: one request.
    const results = await Promise.all(Array.from({ length: 5 }, () => verifyRuntimeResult(validated, cache)));
    assert.ok(results.every((r) => r.ok));
    assert.equal(fetches, 1);
    // A known kid never fetches.
    await verifyRuntimeResult(activated, cache);
    assert.equal(fetches, 1);
    // A rotation: the new kid is unknown, but the interval is not over — refused, no request.
    const rotated = await h.lk.keyring.rotate({ type: "system", id: "sdk-test" });
    const fresh = await postRuntime(baseUrl, "/api/v1/license/validate", key, { fingerprint: "verify-host-1" });
    assert.equal(fresh.json.signature.kid, rotated.kid);
    await assertTampered(verifyRuntimeResult(fresh.json, cache), "unknown_kid");
    assert.equal(fetches, 1);
    // After the interval the unknown kid triggers exactly one fetch; old answers keep verifying (retired key).
    now += 60_000;
    assert.equal((await verifyRuntimeResult(fresh.json, cache)).kid, rotated.kid);
    assert.equal(fetches, 2);
    assert.equal((await verifyRuntimeResult(validated, cache)).ok, true);
    assert.equal(cache.store.get(validated.signature.kid)?.status, "retired");
    await assertTampered(verifyRuntimeResult({ ...fresh.json, signature: { ...fresh.json.signature, kid: "k_nope" } }, cache), "unknown_kid");
    assert.equal(fetches, 2);
    assert.equal(cache.fetchCount, 2);
    assert.equal(await cache.refresh(), false, "refresh respects the interval");
    assert.equal(await cache.refresh({ force: true }), true);
    assert.equal(fetches, 3);
  });

  it("a key carried in the response or envelope is never trusted", async () => {
    const attacker = (await webcrypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const rawPub = new Uint8Array(await webcrypto.subtle.exportKey("raw", attacker.publicKey));
    const forgedData = { ...validated.data, status: "active", expires_at: "2099-01-01T00:00:00.000Z" };
    const value = encodeBase64(
      new Uint8Array(await webcrypto.subtle.sign({ name: "Ed25519" }, attacker.privateKey, new TextEncoder().encode(JSON.stringify(forgedData)))),
    );
    const attackerKey: PublicKeyRecord = { kid: "k_attacker000000000", algorithm: "Ed25519", public_key: encodeBase64(rawPub), status: "active" };
    let fetches = 0;
    const cache = createKeyCache({
      baseUrl,
      fetch: (input, init) => {
        fetches++;
        return fetch(input, init);
      },
    });
    // The forged answer names the attacker's kid and carries the key in every place one might look.
    const forged: Json = {
      data: forgedData,
      signature: { alg: "Ed25519", kid: attackerKey.kid, value, public_key: attackerKey.public_key },
      meta: { request_id: "req_x", public_keys: [attackerKey] },
      public_keys: [attackerKey],
      keys: { data: [attackerKey] },
    };
    await assertTampered(verifyRuntimeResult(forged, cache), "unknown_kid");
    assert.equal(fetches, 1, "the cache asked the server, not the response");
    assert.equal(cache.store.has(attackerKey.kid), false);
    // Signed by the attacker under the server's real kid: the server's key does not verify it.
    const underRealKid: Json = { ...forged, signature: { alg: "Ed25519", kid: validated.signature.kid, value } };
    await assertTampered(verifyRuntimeResult(underRealKid, cache), "bad_signature");
    // The same for an error envelope.
    const fakeError = { code: "LICENSE_INACTIVE", message: "license is not active" };
    const errValue = encodeBase64(
      new Uint8Array(await webcrypto.subtle.sign({ name: "Ed25519" }, attacker.privateKey, new TextEncoder().encode(JSON.stringify(fakeError)))),
    );
    await assertTampered(verifyRuntimeError({ error: fakeError, signature: { alg: "Ed25519", kid: validated.signature.kid, value: errValue } }, cache), "bad_signature");
    // Sanity: the forgery does verify when the attacker's key is (wrongly) trusted.
    assert.equal((await verifyRuntimeResult(forged, new PublicKeyStore([attackerKey]))).ok, true);
  });

  it("pinned keys verify with no fetch at all; unknown kids are refused without a request", async () => {
    const noFetch: typeof fetch = () => {
      throw new Error("a pinned key cache must not fetch");
    };
    const cache = createKeyCache({ pinned: keys, fetch: noFetch });
    assert.equal(cache.pinned, true);
    assert.equal((await verifyRuntimeResult(validated, cache)).ok, true);
    assert.equal((await verifyRuntimeError(denied, cache)).error.code, "LICENSE_INACTIVE");
    await assertTampered(verifyRuntimeResult({ ...validated, signature: { ...validated.signature, kid: "k_unknown" } }, cache), "unknown_kid");
    assert.equal(await cache.refresh({ force: true }), false);
    assert.equal(cache.fetchCount, 0);
    // Pinned on a cache with a base URL: still never fetches.
    const pinnedWithUrl = createKeyCache({ baseUrl, pinned: { data: keys }, fetch: noFetch });
    await assertTampered(verifyRuntimeResult({ ...validated, signature: { ...validated.signature, kid: "k_other" } }, pinnedWithUrl), "unknown_kid");
    assert.throws(() => createKeyCache({}), TypeError);
  });

  it("a key set that cannot be loaded is a TransportError (nothing verified), retried only after the interval", async () => {
    let now = 0;
    let calls = 0;
    const cache = createKeyCache({
      baseUrl: "http://127.0.0.1:1",
      fetch: async () => {
        calls++;
        throw new TypeError("fetch failed");
      },
      now: () => now,
    });
    await assert.rejects(verifyRuntimeResult(validated, cache), TransportError);
    await assert.rejects(verifyRuntimeResult(validated, cache), TransportError);
    assert.equal(calls, 1);
    now += 60_000;
    const answering503 = createKeyCache({ baseUrl, fetch: async () => new Response("{}", { status: 503 }) });
    await assert.rejects(verifyRuntimeResult(validated, answering503), (e) => e instanceof TransportError && !(e instanceof ApiError));
    await assert.rejects(verifyRuntimeResult(validated, cache), TransportError);
    assert.equal(calls, 2);
  });

  it("through the SDK clients: answers verify, ApiError envelopes verify, a tampered 200 is a SignatureVerificationError", async () => {
    let tamper = false;
    const mitm: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!tamper) return res;
      const text = (await res.text()).replace('"status":"active"', '"status":"activ3"');
      return new Response(text, { status: res.status, headers: { "content-type": res.headers.get("content-type") ?? "application/json" } });
    };
    const runtime = new RuntimeClient({ baseUrl, licenseKey: key, fetch: mitm });
    const system = new SystemClient({ baseUrl });
    const publicKeys = await system.listPublicKeys();
    const store = new PublicKeyStore(publicKeys.data);
    const result = await runtime.validateLicense({ body: { fingerprint: "verify-host-1" } });
    const verified = await verifyRuntimeResult(result, store);
    assert.equal(verified.data.license_id, licenseId);
    assert.equal(verified.data.status, "active");
    const act = await runtime.activateLicense({ body: { fingerprint: "verify-host-1" } });
    assert.equal((await verifyRuntimeResult(act, store)).data.device_id, verified.data.device_id);

    tamper = true;
    const altered = await runtime.validateLicense({ body: { fingerprint: "verify-host-1" } });
    assert.equal((altered.data as { status: string }).status, "activ3", "the client returns the answer as received");
    await assertTampered(verifyRuntimeResult(altered, store), "bad_signature");
    tamper = false;

    // A refusal through the client is an ApiError carrying the signed envelope; it verifies.
    const other = await issueLicense(h);
    await h.request({ url: `/api/v1/licenses/${other.licenseId}/suspend`, body: {}, token: ADMIN_TOKEN });
    const suspended = new RuntimeClient({ baseUrl, licenseKey: other.key });
    const err = await suspended.validateLicense({ body: { fingerprint: "x" } }).then(
      () => assert.fail("a suspended license validated"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApiError);
    assert.equal(err.code, "LICENSE_INACTIVE");
    const v = await verifyRuntimeError(err, store);
    assert.equal(v.error.code, "LICENSE_INACTIVE");
    assert.equal(v.kid, err.signature?.kid);
    // The same error with its envelope's code changed does not verify.
    const forged = new ApiError({ status: 403, body: { ...(err.body as Json), error: { ...(err.body as Json).error, code: "LICENSE_EXPIRED" } } });
    await assertTampered(verifyRuntimeError(forged, store), "bad_signature");
  });

  it("PublicKeyStore accepts only Ed25519 keys of 32 bytes", async () => {
    const good = keys[0]!;
    const store = new PublicKeyStore([
      { ...good, kid: "k_rsa", algorithm: "RS256" },
      { ...good, kid: "k_lower", algorithm: "ed25519" },
      { ...good, kid: "k_short", public_key: encodeBase64(new Uint8Array(31)) },
      { ...good, kid: "k_bad64", public_key: "not base64!" },
      good,
    ]);
    assert.deepEqual(store.kids(), [good.kid]);
    const t = clone(validated);
    t.signature.kid = "k_rsa";
    await assertTampered(verifyRuntimeResult(t, store), "unknown_kid");
  });
});

describe("base64", () => {
  it("round-trips and matches Node's encoder", () => {
    for (let n = 0; n < 70; n++) {
      const bytes = new Uint8Array(webcrypto.getRandomValues(new Uint8Array(n)));
      const s = encodeBase64(bytes);
      assert.equal(s, Buffer.from(bytes).toString("base64"));
      assert.deepEqual(decodeBase64(s), bytes);
    }
  });
  it("is strict: alphabet, length, padding and unused bits", () => {
    for (const bad of ["A", "AB=", "A===", "AB=C", "AB-_", "AB C", "QQ=a", "QR==", "QUJ=", "Zm9v\n"]) {
      assert.throws(() => decodeBase64(bad), Base64Error, bad);
    }
    assert.deepEqual([...decodeBase64("QQ==")], [65]);
    assert.deepEqual([...decodeBase64("QUI=")], [65, 66]);
    assert.deepEqual([...decodeBase64("")], []);
  });
});
