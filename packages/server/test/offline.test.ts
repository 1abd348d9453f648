// POST /api/v1/license/offline (D5) and docs/offline-format.md. The decoder here follows ONLY the
// document's steps with node:crypto primitives (not src/crypto/offline-envelope.ts): it decodes the
// document's own test vector and live envelopes, verifies the inner signature against
// /api/v1/system/public-keys, and shows that changing any byte of salt, nonce or ciphertext, or the
// kid, fails. Plus every declared status of the operation, the D2 refusals and the expiry bound.
import assert from "node:assert/strict";
import { createDecipheriv, createPublicKey, hkdfSync, verify } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DAY_MS } from "../src/clock.js";
import { openOffline, sealOffline } from "../src/crypto/offline-envelope.js";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs/offline-format.md");

interface Envelope {
  kid: string;
  salt: string;
  nonce: string;
  ciphertext: string;
}

// ---- The decoder, written from docs/offline-format.md "Decoding, step by step" ----

/** Step 1: the canonical license key. */
function canonicalKey(typed: string): string {
  const t = typed.trim();
  if (!t.toLowerCase().startsWith("lsk_")) throw new Error("not a license key");
  const body = t
    .slice(4)
    .replaceAll("-", "")
    .toUpperCase()
    .replace(/[IL]/g, "1")
    .replaceAll("O", "0");
  if (!/^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{32}$/.test(body)) throw new Error("not a license key");
  return `lsk_${body}`;
}

/** Step 2: standard base64 with padding. */
function b64(field: string, s: string): Buffer {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) throw new Error(`${field} is not standard base64`);
  return Buffer.from(s, "base64");
}

/** Steps 2–4: the plaintext bytes, or a throw when the envelope does not authenticate. */
function decrypt(licenseKey: string, env: Envelope): Buffer {
  const salt = b64("salt", env.salt);
  const nonce = b64("nonce", env.nonce);
  const sealed = b64("ciphertext", env.ciphertext);
  if (salt.length !== 16 || nonce.length !== 12 || sealed.length < 16) throw new Error("bad field length");
  const key = Buffer.from(hkdfSync("sha256", Buffer.from(licenseKey, "utf8"), salt, Buffer.from("licensekit/offline/v1", "ascii"), 32));
  const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: 16 });
  decipher.setAAD(Buffer.from(env.kid, "utf8"));
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

/** Steps 5–7: parse, check the signature header, verify Ed25519 over the raw `data` text. */
// biome-ignore lint/suspicious/noExplicitAny: the decoded payload is inspected field by field
function verifyPayload(plaintext: Buffer, env: Envelope, keys: PublicKeyEntry[]): { data: any; signature: any; text: string; signedText: string } {
  const text = plaintext.toString("utf8");
  assert.ok(text.startsWith('{"data":'), "plaintext starts with {\"data\":");
  const signedText = text.slice(8, text.lastIndexOf(',"signature":'));
  const parsed = JSON.parse(text);
  const sig = parsed.signature;
  if (sig.alg !== "Ed25519" || sig.kid !== env.kid) throw new Error("signature header does not match the envelope");
  const key = keys.find((k) => k.kid === sig.kid && k.algorithm === "Ed25519");
  if (!key) throw new Error(`no public key ${sig.kid}`);
  const raw = b64("public_key", key.public_key);
  assert.equal(raw.length, 32);
  const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
  if (!verify(null, Buffer.from(signedText, "utf8"), publicKey, b64("signature.value", sig.value))) throw new Error("inner signature does not verify");
  return { data: parsed.data, signature: sig, text, signedText };
}

function decode(licenseKey: string, env: Envelope, keys: PublicKeyEntry[]) {
  return verifyPayload(decrypt(licenseKey, env), env, keys);
}

/** A copy of a base64 field with byte `i` flipped. */
function flipByte(s: string, i: number): string {
  const b = Buffer.from(s, "base64");
  b[i] = b[i]! ^ 0x01;
  return b.toString("base64");
}

function docBlock(doc: string, tag: string): string {
  const m = new RegExp("```\\w+ " + tag + "\\n([\\s\\S]*?)\\n```").exec(doc);
  assert.ok(m, `docs/offline-format.md has a ${tag} block`);
  return m[1]!;
}

describe("docs/offline-format.md test vector", () => {
  const doc = fs.readFileSync(DOC, "utf8");
  const key = docBlock(doc, "offline-vector-license-key").trim();
  const keys: PublicKeyEntry[] = JSON.parse(docBlock(doc, "offline-vector-public-keys"));
  const answer = JSON.parse(docBlock(doc, "offline-vector-answer"));
  const env: Envelope = answer.data;

  it("decodes with the documented steps to the documented plaintext, and its signature verifies", async () => {
    assert.equal(canonicalKey(key), key, "the vector's key is canonical");
    const typed = /Authorization header the device actually sent: `License (\S+)`/.exec(doc)?.[1];
    assert.ok(typed);
    assert.notEqual(typed, key);
    assert.equal(canonicalKey(typed), key, "step 1 turns the typed key into the HKDF input");
    assert.deepEqual(Object.keys(env).sort(), ["ciphertext", "kid", "nonce", "salt"]);
    const out = decode(key, env, keys);
    assert.equal(out.text, docBlock(doc, "offline-vector-plaintext"));
    assert.equal(JSON.stringify(out.data), out.signedText, "in JavaScript, JSON.stringify(data) reproduces the signed bytes");
    assert.equal(await sdkVerify(JSON.parse(out.text), keys), true);
    assert.equal(out.data.offline.expires_at, out.data.expires_at, "capped at the license expiry");
    assert.throws(() => decrypt(typed, env), "the typed spelling is not the HKDF input");
  });

  it("the intermediate values printed in the document match", () => {
    const salt = Buffer.from(env.salt, "base64");
    const aesKey = Buffer.from(hkdfSync("sha256", Buffer.from(key, "utf8"), salt, Buffer.from("licensekit/offline/v1"), 32));
    assert.match(doc, new RegExp(`salt \\(16 bytes\\)\\s+${salt.toString("hex")}`));
    assert.match(doc, new RegExp(`AES-256 key \\(32 bytes\\)\\s+${aesKey.toString("hex")}`));
    const sealed = Buffer.from(env.ciphertext, "base64");
    assert.match(doc, new RegExp(`tag \\(16 bytes\\)\\s+${sealed.subarray(sealed.length - 16).toString("hex")}`));
  });
});

describe("src/crypto/offline-envelope.ts (the reference sealer and opener)", () => {
  const doc = fs.readFileSync(DOC, "utf8");
  const key = docBlock(doc, "offline-vector-license-key").trim();
  const env: Envelope = JSON.parse(docBlock(doc, "offline-vector-answer")).data;

  it("openOffline decodes the document's vector; sealOffline output decodes with the document's steps", () => {
    assert.equal(openOffline(key, env).toString("utf8"), docBlock(doc, "offline-vector-plaintext"));
    const sealed = sealOffline(key, "k_test", '{"data":{},"signature":{}}');
    assert.equal(decrypt(key, sealed).toString("utf8"), '{"data":{},"signature":{}}');
    assert.equal(Buffer.from(sealed.salt, "base64").length, 16);
    assert.equal(Buffer.from(sealed.nonce, "base64").length, 12);
    assert.equal(Buffer.from(sealed.ciphertext, "base64").length, 26 + 16);
  });

  it("openOffline refuses tampered, truncated and malformed envelopes", () => {
    assert.throws(() => openOffline(key, { ...env, kid: `${env.kid}!` }));
    assert.throws(() => openOffline(key, { ...env, salt: flipByte(env.salt, 0) }));
    assert.throws(() => openOffline(key, { ...env, nonce: flipByte(env.nonce, 11) }));
    assert.throws(() => openOffline(key, { ...env, ciphertext: flipByte(env.ciphertext, 0) }));
    assert.throws(() => openOffline(key, { ...env, ciphertext: Buffer.alloc(15).toString("base64") }), /shorter than its tag/);
    assert.throws(() => openOffline(key, { ...env, salt: env.salt.replace(/=+$/, "") }), /base64/);
    assert.throws(() => openOffline(key, { ...env, nonce: Buffer.alloc(16).toString("base64") }), /12 bytes/);
  });
});

for (const engine of ENGINES) {
  describe(`POST /api/v1/license/offline [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    let n = 0;
    const iso = (ms: number) => new Date(ms).toISOString();
    const activate = (key: string, body: Record<string, unknown>) =>
      h.request({ url: "/api/v1/license/activate", licenseKey: key, body, idempotencyKey: `off-act-${engine}-${++n}` });
    const offline = (key: string, body: Record<string, unknown>, idempotencyKey?: string) =>
      h.request({ url: "/api/v1/license/offline", licenseKey: key, body, ...(idempotencyKey ? { idempotencyKey } : {}) });
    const keys = async (): Promise<PublicKeyEntry[]> => (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    const license = async (id: string) => (await h.request({ url: `/api/v1/licenses/${id}` })).json.data;
    const events = (licenseId: string, type: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", licenseId).where("event_type", "=", type).orderBy("sequence").execute();
    const deviceCount = async (licenseId: string) => (await h.lk.store.db.selectFrom("devices").select("id").where("license_id", "=", licenseId).execute()).length;
    const OFFLINE = { allow_offline_activation: true, offline_grace_days: 7 };

    // biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
    const assertDenied = async (res: { status: number; json: any; text: string }, status: number, code: string) => {
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.error.code, code, res.text);
      assert.equal(res.json.data, undefined);
      assert.equal(await sdkVerify(res.json, await keys(), "error"), true, `${code} carries a verifiable signature`);
    };

    it("200: an envelope in the contract's shape that decodes with the license key alone; one license.offline_issued event; no seat used", async () => {
      const now = h.clock.now();
      const lic = await issueLicense(h, { ...OFFLINE, max_activations: 2 }, { expires_at: iso(now + 90 * DAY_MS) });
      const act = await activate(lic.key, { fingerprint: "  off-main  ", hostname: "laptop" });
      assert.equal(act.status, 200, act.text);
      const seats = (await license(lic.licenseId)).active_device_count;

      const res = await offline(lic.key, { fingerprint: "  off-main  ", app_version: "3.1.0" });
      assert.equal(res.status, 200, res.text);
      assertOperationResponse("/api/v1/license/offline", "post", "200", res.json);
      assertContract("OfflineEnvelope", res.json.data);
      assert.equal(res.json.signature, undefined, "the envelope answer is not signed outside");
      assert.deepEqual(Object.keys(res.json.data), ["kid", "salt", "nonce", "ciphertext"]);

      const ks = await keys();
      const active = ks.find((k) => k.status === "active")!;
      assert.equal(res.json.data.kid, active.kid);
      const out = decode(lic.key, res.json.data, ks);
      // The inner payload also verifies exactly as the official SDK verifies online answers.
      assert.equal(await sdkVerify(JSON.parse(out.text), ks), true);
      const d = out.data;
      assert.equal(d.license_id, lic.licenseId);
      assert.equal(d.status, "active");
      assert.equal(d.license_type, "subscription");
      assert.equal(d.device_id, act.json.data.device_id);
      assert.ok(Array.isArray(d.features));
      assert.equal(d.issued_at, iso(now));
      assert.deepEqual(d.offline, { issued_at: iso(now), expires_at: iso(now + 7 * DAY_MS), device_id: act.json.data.device_id, fingerprint: "off-main" });
      assert.ok(Date.parse(d.offline.expires_at) <= Date.parse((await license(lic.licenseId)).expires_at));
      // Entitlement part matches the contract's entitlement schema.
      const { offline: _o, ...entitlement } = d;
      assertContract("RuntimeEntitlementResponseData", entitlement);

      const evs = await events(lic.licenseId, "license.offline_issued");
      assert.equal(evs.length, 1);
      const meta = JSON.parse(evs[0]!.metadata);
      assert.equal(meta.device_id, act.json.data.device_id);
      assert.equal(meta.kid, res.json.data.kid);
      assert.equal(meta.offline_expires_at, d.offline.expires_at);
      assert.ok(!evs[0]!.metadata.includes("off-main"), "fingerprint hashed");
      assert.ok(!evs[0]!.metadata.includes(lic.key), "no license key");
      assert.equal((await license(lic.licenseId)).active_device_count, seats, "no seat used");

      // Two issues never share salt or nonce.
      const again = await offline(lic.key, { fingerprint: "off-main" });
      assert.notEqual(again.json.data.salt, res.json.data.salt);
      assert.notEqual(again.json.data.nonce, res.json.data.nonce);
    });

    it("tampering with any byte of salt, nonce or ciphertext, or with kid, makes decryption fail; so does another key", async () => {
      const lic = await issueLicense(h, OFFLINE);
      await activate(lic.key, { fingerprint: "tamper" });
      const res = await offline(lic.key, { fingerprint: "tamper" });
      assert.equal(res.status, 200, res.text);
      const env: Envelope = res.json.data;
      assert.doesNotThrow(() => decrypt(lic.key, env));
      for (const field of ["salt", "nonce", "ciphertext"] as const) {
        const len = Buffer.from(env[field], "base64").length;
        for (let i = 0; i < len; i++) {
          assert.throws(() => decrypt(lic.key, { ...env, [field]: flipByte(env[field], i) }), `${field} byte ${i} flipped must fail`);
        }
      }
      const kidChars = [...env.kid];
      for (let i = 0; i < kidChars.length; i++) {
        const changed = [...kidChars];
        changed[i] = changed[i] === "A" ? "B" : "A";
        assert.throws(() => decrypt(lic.key, { ...env, kid: changed.join("") }), `kid char ${i} changed must fail`);
      }
      assert.throws(() => decrypt(lic.key, { ...env, kid: `${env.kid}x` }));
      const other = await issueLicense(h, OFFLINE);
      assert.throws(() => decrypt(other.key, env), "another license's key cannot decrypt");
      assert.throws(() => decrypt(lic.key.toLowerCase(), env), "only the canonical key is the HKDF input");
    });

    it("a non-canonical spelling of the key authenticates; the envelope is keyed to the canonical key", async () => {
      const lic = await issueLicense(h, OFFLINE);
      const typed = `  ${lic.key.slice(0, 4).toUpperCase()}${lic.key.slice(4).toLowerCase().replace(/(.{8})(?=.)/g, "$1-")}  `.trim();
      assert.notEqual(typed, lic.key);
      await activate(typed, { fingerprint: "typed" });
      const res = await offline(typed, { fingerprint: "typed" });
      assert.equal(res.status, 200, res.text);
      assert.equal(canonicalKey(typed), lic.key);
      assert.equal(decode(canonicalKey(typed), res.json.data, await keys()).data.offline.fingerprint, "typed");
    });

    it("offline.expires_at never passes the license expiry: capped near expiry, full grace without one, already past inside the grace period", async () => {
      const now = h.clock.now();
      const soon = await issueLicense(h, { ...OFFLINE, grace_period_days: 5 }, { expires_at: iso(now + 2 * DAY_MS) });
      await activate(soon.key, { fingerprint: "cap" });
      const capped = decode(soon.key, (await offline(soon.key, { fingerprint: "cap" })).json.data, await keys()).data;
      assert.equal(capped.offline.expires_at, iso(now + 2 * DAY_MS));
      assert.equal(capped.offline.expires_at, capped.expires_at);

      const forever = await issueLicense(h, { ...OFFLINE, offline_grace_days: 30 });
      await activate(forever.key, { fingerprint: "nolimit" });
      const full = decode(forever.key, (await offline(forever.key, { fingerprint: "nolimit" })).json.data, await keys()).data;
      assert.equal(full.expires_at, undefined);
      assert.equal(full.offline.expires_at, iso(now + 30 * DAY_MS));

      h.clock.advance(3 * DAY_MS); // soon: expired a day ago, inside its 5 grace days
      const inGrace = await offline(soon.key, { fingerprint: "cap" });
      assert.equal(inGrace.status, 200, inGrace.text);
      const g = decode(soon.key, inGrace.json.data, await keys()).data;
      assert.equal(g.status, "grace_period");
      assert.equal(g.offline.expires_at, g.expires_at);
      assert.ok(Date.parse(g.offline.expires_at) < h.clock.now(), "no offline use past the license's own expiry");
    });

    it("envelopes issued before a key rotation keep verifying with the retired key; new ones use the new kid", async () => {
      const lic = await issueLicense(h, OFFLINE);
      await activate(lic.key, { fingerprint: "rot" });
      const old = (await offline(lic.key, { fingerprint: "rot" })).json.data as Envelope;
      const rotated = await h.lk.keyring.rotate({ type: "system", id: "offline-test" });
      const ks = await keys();
      assert.equal(ks.find((k) => k.kid === old.kid)?.status, "retired");
      assert.doesNotThrow(() => decode(lic.key, old, ks));
      const fresh = (await offline(lic.key, { fingerprint: "rot" })).json.data as Envelope;
      assert.equal(fresh.kid, rotated.kid);
      assert.doesNotThrow(() => decode(lic.key, fresh, ks));
      // Claiming the old envelope was signed by the new key fails at decryption (kid is the AAD).
      assert.throws(() => decrypt(lic.key, { ...old, kid: rotated.kid }));
    });

    it("403 DEVICE_NOT_ACTIVATED for a machine without an active binding — never bound, or deactivated — and no seat is created", async () => {
      const lic = await issueLicense(h, { ...OFFLINE, max_activations: 2 });
      await assertDenied(await offline(lic.key, { fingerprint: "stranger" }), 403, "DEVICE_NOT_ACTIVATED");
      assert.equal(await deviceCount(lic.licenseId), 0, "no device record was created");
      assert.equal((await license(lic.licenseId)).active_device_count, 0);
      await activate(lic.key, { fingerprint: "leaver" });
      const d = await h.request({ url: "/api/v1/license/deactivate", licenseKey: lic.key, body: { fingerprint: "leaver" }, idempotencyKey: `off-d-${engine}` });
      assert.equal(d.status, 200, d.text);
      await assertDenied(await offline(lic.key, { fingerprint: "leaver" }), 403, "DEVICE_NOT_ACTIVATED");
      assert.equal((await license(lic.licenseId)).active_device_count, 0);
      const denials = await events(lic.licenseId, "license.validation_denied");
      assert.deepEqual(
        denials.map((e) => [JSON.parse(e.metadata).operation, JSON.parse(e.metadata).code]),
        [
          ["offline", "DEVICE_NOT_ACTIVATED"],
          ["offline", "DEVICE_NOT_ACTIVATED"],
        ],
      );
      assert.equal((await events(lic.licenseId, "license.offline_issued")).length, 0);
    });

    it("403 OFFLINE_NOT_ALLOWED when the policy forbids offline use (after the binding rule)", async () => {
      const lic = await issueLicense(h, { max_activations: 2 }); // allow_offline_activation defaults to false
      await assertDenied(await offline(lic.key, { fingerprint: "nb" }), 403, "DEVICE_NOT_ACTIVATED");
      await activate(lic.key, { fingerprint: "bound" });
      const res = await offline(lic.key, { fingerprint: "bound" });
      await assertDenied(res, 403, "OFFLINE_NOT_ALLOWED");
      assert.equal((await events(lic.licenseId, "license.offline_issued")).length, 0);
      const pol = await h.request({ method: "PATCH", url: `/api/v1/policies/${lic.policyId}`, body: { allow_offline_activation: true } });
      assert.equal(pol.status, 200, pol.text);
      assert.equal((await offline(lic.key, { fingerprint: "bound" })).status, 200);
    });

    describe("403: the D2 refusals", () => {
      it("suspended and revoked → LICENSE_INACTIVE", async () => {
        for (const action of ["suspend", "revoke"] as const) {
          const lic = await issueLicense(h, OFFLINE);
          await activate(lic.key, { fingerprint: `st-${action}` });
          assert.equal((await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/${action}` })).status, 200);
          await assertDenied(await offline(lic.key, { fingerprint: `st-${action}` }), 403, "LICENSE_INACTIVE");
        }
      });

      it("expired past the grace days → LICENSE_EXPIRED", async () => {
        const lic = await issueLicense(h, OFFLINE, { expires_at: iso(h.clock.now() + DAY_MS) });
        await activate(lic.key, { fingerprint: "exp" });
        h.clock.advance(2 * DAY_MS);
        await assertDenied(await offline(lic.key, { fingerprint: "exp" }), 403, "LICENSE_EXPIRED");
      });

      it("blacklisted device → DEVICE_BLACKLISTED", async () => {
        const lic = await issueLicense(h, OFFLINE);
        const a = await activate(lic.key, { fingerprint: "bl" });
        assert.equal((await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/devices/${a.json.data.device_id}/blacklist` })).status, 200);
        await assertDenied(await offline(lic.key, { fingerprint: "bl" }), 403, "DEVICE_BLACKLISTED");
      });

      it("VM and container refused by the policy → VM_NOT_ALLOWED / CONTAINER_NOT_ALLOWED", async () => {
        const lic = await issueLicense(h, { ...OFFLINE, allow_vm: false, allow_container: false });
        await assertDenied(await offline(lic.key, { fingerprint: "vm", is_vm: true }), 403, "VM_NOT_ALLOWED");
        await assertDenied(await offline(lic.key, { is_container: true, namespace: "ns" }), 403, "CONTAINER_NOT_ALLOWED");
      });

      it("an ineligible app_version → VERSION_NOT_ELIGIBLE", async () => {
        const lic = await issueLicense(h, OFFLINE);
        await activate(lic.key, { fingerprint: "ver" });
        assert.equal((await h.request({ url: `/api/v1/products/${lic.productId}/versions`, body: { version: "2.0.0" } })).status, 201);
        await assertDenied(await offline(lic.key, { fingerprint: "ver", app_version: "9.9.9" }), 403, "VERSION_NOT_ELIGIBLE");
        assert.equal((await offline(lic.key, { fingerprint: "ver", app_version: "2.0.0" })).status, 200);
      });

      it("a container binding that is bound gets an envelope without a fingerprint", async () => {
        const lic = await issueLicense(h, OFFLINE);
        const ct = { is_container: true, cluster_id: "k8s", pod_name: "api-0" };
        await activate(lic.key, ct);
        const res = await offline(lic.key, ct);
        assert.equal(res.status, 200, res.text);
        const d = decode(lic.key, res.json.data, await keys()).data;
        assert.equal(d.offline.fingerprint, undefined);
        assert.equal(d.offline.device_id, d.device_id);
      });
    });

    it("400 INVALID_JSON (unknown field, wrong type) and BAD_REQUEST (malformed Idempotency-Key); 401 without a valid key; 422 for an incomplete binding", async () => {
      const lic = await issueLicense(h, OFFLINE);
      await activate(lic.key, { fingerprint: "errs" });
      await assertDenied(await offline(lic.key, { fingerprint: "errs", offline_days: 30 }), 400, "INVALID_JSON");
      await assertDenied(await offline(lic.key, { fingerprint: "errs", is_vm: "no" }), 400, "INVALID_JSON");
      await assertDenied(await offline(lic.key, { fingerprint: "errs" }, "bad key"), 400, "BAD_REQUEST");
      await assertDenied(await h.request({ url: "/api/v1/license/offline", body: { fingerprint: "errs" } }), 401, "UNAUTHORIZED");
      await assertDenied(await offline("lsk_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", { fingerprint: "errs" }), 401, "UNAUTHORIZED");
      const noFp = await offline(lic.key, { hostname: "h" });
      await assertDenied(noFp, 422, "VALIDATION_ERROR");
      assert.match(noFp.json.error.detail, /fingerprint/);
      await assertDenied(await offline(lic.key, { is_container: true }), 422, "VALIDATION_ERROR");
      assert.equal((await events(lic.licenseId, "license.offline_issued")).length, 0);
    });

    it("an optional Idempotency-Key replays the same envelope; reused with another body → 409 IDEMPOTENCY_CONFLICT", async () => {
      const lic = await issueLicense(h, { ...OFFLINE, max_activations: 2 });
      await activate(lic.key, { fingerprint: "idem-a" });
      await activate(lic.key, { fingerprint: "idem-b" });
      const key = `off-idem-${engine}`;
      const first = await offline(lic.key, { fingerprint: "idem-a" }, key);
      assert.equal(first.status, 200, first.text);
      const again = await offline(lic.key, { fingerprint: "idem-a" }, key);
      assert.equal(again.text, first.text);
      assert.equal(again.headers["idempotent-replayed"], "true");
      await assertDenied(await offline(lic.key, { fingerprint: "idem-b" }, key), 409, "IDEMPOTENCY_CONFLICT");
      assert.equal((await events(lic.licenseId, "license.offline_issued")).length, 1);
    });

    // The contract also lists 404 for this operation; this server answers a machine without a binding
    // with 403 DEVICE_NOT_ACTIVATED (D5, docs/offline-format.md), so no request produces a 404 here.
  });
}
