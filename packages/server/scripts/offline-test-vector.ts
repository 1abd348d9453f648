// Prints a real offline envelope test vector for docs/offline-format.md: a throw-away server (temp
// SQLite database, fixed clock) issues a license, activates a device and asks POST
// /api/v1/license/offline; the script prints the license key, the public keys, the answer, and every
// intermediate value of the decoding steps. Authentication uses a hand-typed spelling of the key
// (lower case, hyphens) to show that the HKDF input is the canonical key, not what was typed.
// Usage: npx tsx scripts/offline-test-vector.ts
import { createDecipheriv, createPublicKey, hkdfSync, verify } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildApp } from "../src/app.js";
import { ManualClock } from "../src/clock.js";
import { loadConfig } from "../src/config.js";
import { createServices } from "../src/services.js";

const TOKEN = "lkm_VectorAdminToken00000000000000000000000";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-offline-vector-"));
const config = loadConfig({
  LICENSEKIT_DATABASE_URL: `sqlite:${path.join(dir, "licensekit.db")}`,
  LICENSEKIT_DATA_DIR: dir,
  LICENSEKIT_BOOTSTRAP_TOKEN: TOKEN,
  LICENSEKIT_LOG_LEVEL: "silent",
});
const clock = new ManualClock(Date.parse("2026-03-01T12:00:00.000Z"));
const { services } = await createServices(config, { clock });
const app = await buildApp(services, { logger: false });
await app.ready();

async function call(method: "GET" | "POST", url: string, body: unknown, headers: Record<string, string>) {
  const res = await app.inject({ method, url, headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) }, payload: body ? JSON.stringify(body) : undefined });
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
  return { json: JSON.parse(res.body), text: res.body };
}
const admin = { authorization: `Bearer ${TOKEN}` };

try {
  const product = (await call("POST", "/api/v1/products", { name: "Vector App", code: "vector-app" }, admin)).json.data;
  const policy = (
    await call(
      "POST",
      `/api/v1/products/${product.id}/policies`,
      { name: "Offline", code: "offline", license_type: "subscription", allow_offline_activation: true, offline_grace_days: 7 },
      admin,
    )
  ).json.data;
  const created = (await call("POST", "/api/v1/licenses", { product_id: product.id, policy_id: policy.id, expires_at: "2026-03-05T00:00:00.000Z" }, admin)).json.data;
  const key: string = created.license_key;
  // A metered feature and a version catalogue, so the payload shows features[] and version_eligibility.
  const feature = (await call("POST", `/api/v1/products/${product.id}/features`, { name: "PDF export", code: "pdf.export" }, admin)).json.data;
  await call("POST", `/api/v1/licenses/${created.license.id}/features`, { feature_id: feature.id, max_consumptions: 500 }, admin);
  await call("POST", `/api/v1/products/${product.id}/versions`, { version: "2.4.0", released_at: "2026-02-01T00:00:00.000Z" }, admin);
  // How a person might type it: lower case, in groups of eight.
  const typed = `lsk_${key
    .slice(4)
    .toLowerCase()
    .match(/.{1,8}/g)!
    .join("-")}`;
  const runtime = { authorization: `License ${typed}` };
  const binding = { fingerprint: "vector-device-01", hostname: "build-box", app_version: "2.4.0" };
  await call("POST", "/api/v1/license/activate", binding, { ...runtime, "idempotency-key": "vector-activate" });
  const answer = await call("POST", "/api/v1/license/offline", binding, runtime);
  const publicKeys = (await call("GET", "/api/v1/system/public-keys", undefined, {})).json.data;

  // The decoding steps of docs/offline-format.md, with node:crypto primitives only.
  const env = answer.json.data;
  const salt = Buffer.from(env.salt, "base64");
  const nonce = Buffer.from(env.nonce, "base64");
  const sealed = Buffer.from(env.ciphertext, "base64");
  const aesKey = Buffer.from(hkdfSync("sha256", Buffer.from(key, "utf8"), salt, Buffer.from("licensekit/offline/v1", "utf8"), 32));
  const encrypted = sealed.subarray(0, sealed.length - 16);
  const tag = sealed.subarray(sealed.length - 16);
  const decipher = createDecipheriv("aes-256-gcm", aesKey, nonce);
  decipher.setAAD(Buffer.from(env.kid, "utf8"));
  decipher.setAuthTag(tag);
  const plaintext = Buffer.concat([decipher.update(encrypted), decipher.final()]).toString("utf8");
  const inner = JSON.parse(plaintext);
  const pub = publicKeys.find((k: { kid: string }) => k.kid === inner.signature.kid);
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(pub.public_key, "base64")]);
  const ok = verify(null, Buffer.from(JSON.stringify(inner.data), "utf8"), createPublicKey({ key: spki, format: "der", type: "spki" }), Buffer.from(inner.signature.value, "base64"));
  if (!ok) throw new Error("inner signature does not verify");

  const block = (info: string, text: string) => console.log(`\`\`\`${info}\n${text}\n\`\`\`\n`);
  console.log("License key (canonical, as issued; the HKDF input):\n");
  block("text offline-vector-license-key", key);
  console.log(`Authorization header the device actually sent: \`License ${typed}\`\n`);
  console.log("GET /api/v1/system/public-keys → data:\n");
  block("json offline-vector-public-keys", JSON.stringify(publicKeys, null, 2));
  console.log("POST /api/v1/license/offline answer:\n");
  block("json offline-vector-answer", JSON.stringify(answer.json, null, 2));
  console.log("Intermediate values (hex):\n");
  block(
    "text",
    [
      `salt (16 bytes)        ${salt.toString("hex")}`,
      `nonce (12 bytes)       ${nonce.toString("hex")}`,
      `AES-256 key (32 bytes) ${aesKey.toString("hex")}`,
      `AAD (kid, UTF-8)       ${Buffer.from(env.kid, "utf8").toString("hex")}`,
      `ciphertext bytes       ${sealed.length} = ${encrypted.length} encrypted + 16 tag`,
      `tag (16 bytes)         ${tag.toString("hex")}`,
    ].join("\n"),
  );
  console.log("Decrypted plaintext (UTF-8 JSON, exactly these bytes):\n");
  block("json offline-vector-plaintext", plaintext);
  console.log("Signed bytes = JSON.stringify(plaintext.data):\n");
  block("json", JSON.stringify(inner.data));
} finally {
  await app.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
