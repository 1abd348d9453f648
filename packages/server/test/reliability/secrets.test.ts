// Secrets hygiene (issue 9 item 5). A real `licensekit serve` process per engine logs at debug level
// through a scripted session that creates and uses every kind of secret — API tokens (created,
// rotated), license keys (also replayed from a stored idempotent answer), webhook secrets (created,
// rotated, used to sign real deliveries), floating lease tokens, the master key and the bootstrap
// token — and also sends them where they do not belong (query strings, odd headers, unknown body
// fields, wrong surfaces, X-Request-Id) and fails authentication with guessed keys. Then: no secret
// appears in anything the process wrote (stdout + stderr), which is shown to hold every request's
// id; no secret appears in clear in any column of any table, and idempotent answers are sealed.
// Also: comparisons of secret material are constant-time (a unit test and a scan of the sources).
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { secretsEqual } from "../../src/crypto/constant-time.js";
import { masterKeyCheck, masterKeyMatches } from "../../src/crypto/master-key.js";
import { createTestDatabase, ENGINES, type TestDatabase } from "../helpers/engines.js";
import { type Answer, admin, call, HIGH_LIMITS, ServeProcess, serverDir, sleep, tableNames, withDb } from "./processes.js";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const guessKey = () => `lsk_${Array.from(randomBytes(32), (b) => CROCKFORD[b % 32]).join("")}`;
const guessToken = () => `lkm_${randomBytes(30).toString("base64").replace(/[^A-Za-z0-9]/g, "x").slice(0, 40)}`;

interface Delivery {
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: Buffer;
}

for (const engine of ENGINES) {
  describe(`no secret in logs or at rest [${engine}]`, () => {
    let db: TestDatabase;
    let server: ServeProcess;
    let receiver: http.Server;
    const deliveries: Delivery[] = [];
    const master = randomBytes(32).toString("hex");
    const bootstrap = `lkm_${randomBytes(30).toString("base64url").replace(/[-_]/g, "Q").slice(0, 40)}`;
    /** Every secret the session creates or sends, by kind. */
    const secrets: Record<string, string[]> = { master: [master], token: [bootstrap], license_key: [], webhook_secret: [], lease_token: [], guess: [] };
    const answers: Answer[] = [];
    let exitCode: number | null = null;

    before(async () => {
      receiver = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          deliveries.push({ path: req.url ?? "", headers: req.headers, raw: Buffer.concat(chunks) });
          // one endpoint accepts, the other fails (a retry is scheduled and logged)
          res.writeHead(req.url === "/fail" ? 500 : 204).end();
        });
      });
      await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
      db = await createTestDatabase(engine);
      server = await ServeProcess.start({
        env: {
          LICENSEKIT_DATABASE_URL: db.url,
          LICENSEKIT_DATA_DIR: db.dir,
          LICENSEKIT_MASTER_KEY: master,
          LICENSEKIT_BOOTSTRAP_TOKEN: bootstrap,
          LICENSEKIT_LOG_LEVEL: "debug",
          LICENSEKIT_WEBHOOK_ALLOW_PRIVATE: "true",
          LICENSEKIT_WEBHOOK_POLL_MS: "200",
          LICENSEKIT_TRUSTED_PROXIES: "127.0.0.1",
          ...HIGH_LIMITS,
        },
      });
    });
    after(async () => {
      await server?.stop();
      await new Promise((r) => receiver?.close(r));
      await db?.drop();
    });

    it("a scripted session creates, rotates, uses and misplaces every kind of secret", async () => {
      const base = server.base;
      const send = async (url: string, o: Parameters<typeof call>[2] = {}) => {
        const r = await call(base, url, o);
        answers.push(r);
        return r;
      };
      const asAdmin = admin(base, bootstrap);
      const hook = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;

      // API tokens: created, used, rotated; the old one then fails.
      const created0 = await asAdmin("/api-keys", { name: "ci", scopes: ["admin"] });
      const key = { id: created0.api_key.id as string, token: created0.token as string };
      secrets.token!.push(key.token);
      assert.equal((await send("/api/v1/products", { auth: `Bearer ${key.token}` })).status, 200);
      const rotated = await asAdmin(`/api-keys/${key.id}/rotate`, {});
      secrets.token!.push(rotated.token);
      assert.equal((await send("/api/v1/products", { auth: `Bearer ${key.token}` })).status, 401);
      const token = rotated.token as string;
      assert.equal((await send("/api/v1/products", { auth: `Bearer ${token}` })).status, 200);

      // Catalogue and licenses; a license create replayed from its sealed idempotent answer.
      const product = await asAdmin("/products", { name: "Vault", code: "vault" });
      const policy = await asAdmin(`/products/${product.id}/policies`, {
        name: "P",
        code: "p",
        license_type: "perpetual",
        max_activations: 3,
        max_floating_users: 2,
      });
      const createLicense = () =>
        send("/api/v1/licenses", { auth: `Bearer ${token}`, body: { product_id: product.id, policy_id: policy.id }, headers: { "idempotency-key": "create-once" } });
      const created = await createLicense();
      assert.equal(created.status, 201, created.text);
      const licenseKey: string = created.json.data.license_key;
      secrets.license_key!.push(licenseKey);
      const replayed = await createLicense();
      assert.equal(replayed.headers["idempotent-replayed"], "true");
      assert.equal(replayed.json.data.license_key, licenseKey, "the replay shows the key again");
      const second = await asAdmin("/licenses", { product_id: product.id, policy_id: policy.id });
      secrets.license_key!.push(second.license_key);

      // Webhook endpoints: generated secret, given secret, rotated secret; deliveries are signed.
      const ok0 = await asAdmin("/webhooks", { name: "ok", url: `${hook}/ok` });
      const ok = { id: ok0.webhook.id as string, secret: ok0.secret as string };
      secrets.webhook_secret!.push(ok.secret);
      const given = `whsec_${randomBytes(24).toString("base64url").replace(/[-_]/g, "Z")}`;
      secrets.webhook_secret!.push(given);
      await asAdmin("/webhooks", { name: "failing", url: `${hook}/fail`, secret: given });
      const rot = await asAdmin(`/webhooks/${ok.id}`, { rotate_secret: true }, { method: "PATCH" });
      secrets.webhook_secret!.push(rot.secret);
      assert.notEqual(rot.secret, ok.secret);

      // Runtime: activate, validate, floating checkout / heartbeat / checkin, a second lease left live.
      const lic = `License ${licenseKey}`;
      const rt = (p: string, body: unknown, headers: Record<string, string> = {}) => send(`/api/v1/license/${p}`, { auth: lic, body, headers });
      assert.equal((await rt("activate", { fingerprint: "m1" }, { "idempotency-key": "act-1" })).status, 200);
      assert.equal((await rt("activate", { fingerprint: "m1" }, { "idempotency-key": "act-1" })).headers["idempotent-replayed"], "true");
      assert.equal((await rt("validate", { fingerprint: "m1" })).status, 200);
      const lease = await rt("floating/checkout", { fingerprint: "m1" }, { "idempotency-key": "co-1" });
      assert.equal(lease.status, 200, lease.text);
      secrets.lease_token!.push(lease.json.data.lease_token);
      assert.equal((await rt("floating/heartbeat", { lease_token: lease.json.data.lease_token }, { "idempotency-key": "hb-1" })).status, 200);
      assert.equal((await rt("floating/checkin", { lease_token: lease.json.data.lease_token }, { "idempotency-key": "ci-1" })).status, 200);
      const live = await rt("floating/checkout", { fingerprint: "m2" }, { "idempotency-key": "co-2" });
      assert.equal(live.status, 200, live.text);
      secrets.lease_token!.push(live.json.data.lease_token);

      // Failed authentication: guessed keys and tokens, each credential on the wrong surface.
      for (let i = 0; i < 3; i++) {
        const g = guessKey();
        const t = guessToken();
        secrets.guess!.push(g, t);
        assert.equal((await send("/api/v1/license/validate", { auth: `License ${g}`, body: { fingerprint: "m1" } })).status, 401);
        assert.equal((await send("/api/v1/products", { auth: `Bearer ${t}` })).status, 401);
      }
      assert.equal((await send("/api/v1/products", { auth: lic })).status, 401);
      assert.equal((await send("/api/v1/license/validate", { auth: `Bearer ${token}`, body: { fingerprint: "m1" } })).status, 401);
      assert.equal((await send("/api/v1/products", { auth: `Bearer ${licenseKey}` })).status, 401);

      // Secrets where they do not belong: query strings, headers, unknown body fields, bad JSON.
      await send(`/api/v1/products?api_key=${token}&license_key=${licenseKey}`, { auth: `Bearer ${token}` });
      await send(`/api/v1/nowhere?token=${token}&secret=${rot.secret}`, { auth: `Bearer ${token}` });
      await send(`/api/v1/license/validate?key=${licenseKey}`, { auth: lic, body: { fingerprint: "m1" } });
      await send("/api/v1/products", {
        auth: `Bearer ${token}`,
        headers: { "x-api-key": token, "x-license-key": licenseKey, cookie: `session=${token}`, "x-request-id": licenseKey },
      });
      await send("/api/v1/license/validate", { auth: lic, body: { fingerprint: "m1" }, headers: { "x-request-id": live.json.data.lease_token } });
      assert.equal((await rt("validate", { fingerprint: "m1", license_key: licenseKey })).status, 400);
      assert.equal((await rt("floating/heartbeat", { lease_token: licenseKey }, { "idempotency-key": "hb-2" })).status, 422);
      assert.equal((await rt("floating/heartbeat", { lease_token: `${live.json.data.lease_token}x` }, { "idempotency-key": "hb-3" })).status, 422);
      assert.equal((await send("/api/v1/customers", { auth: `Bearer ${token}`, body: { name: "C", code: "c", token } })).status, 400);
      assert.equal((await send("/api/v1/license/validate", { auth: lic, rawBody: `{"fingerprint":"${licenseKey}` })).status, 400);
      assert.equal((await send("/api/v1/webhooks", { auth: `Bearer ${token}`, body: { name: "x", url: "not a url", secret: given } })).status, 422);

      // Both endpoints get deliveries (one accepted, one failing and retried); the rotated secret signs.
      const deadline = Date.now() + 20_000;
      while (!(deliveries.some((d) => d.path === "/ok") && deliveries.some((d) => d.path === "/fail")) && Date.now() < deadline) await sleep(100);
      const signedBy = (d: Delivery, secret: string) =>
        d.headers["x-locksmith-signature"] ===
        `v1=${createHmac("sha256", secret).update(`${d.headers["x-locksmith-timestamp"]}.${d.headers["x-locksmith-delivery-id"]}.`).update(d.raw).digest("hex")}`;
      assert.ok(
        deliveries.some((d) => d.path === "/ok" && signedBy(d, rot.secret)),
        "a delivery signed with the rotated secret",
      );
      assert.ok(
        deliveries.some((d) => d.path === "/fail" && signedBy(d, given)),
        "a delivery signed with the given secret",
      );

      exitCode = await server.stop();
    });

    it("the process exits 0 and its output is not empty: every request id is there, debug lines too", () => {
      assert.equal(exitCode, 0, server.stderr);
      const lines = server.logLines();
      assert.ok(lines.length >= answers.length, `${lines.length} log lines`);
      const logged = new Set(lines.map((l) => l.request_id));
      for (const a of answers) assert.ok(logged.has(a.headers["x-request-id"]), `request id ${a.headers["x-request-id"]} is logged`);
      assert.ok(
        lines.some((l) => l.msg === "request refused"),
        "debug lines were written",
      );
      assert.ok(
        lines.some((l) => String(l.msg).startsWith("webhook attempt failed")),
        "the failing webhook was logged",
      );
    });

    it("no secret appears anywhere in the output (stdout + stderr)", () => {
      const output = `${server.stdout}\n${server.stderr}`;
      const all = Object.entries(secrets).flatMap(([kind, list]) => list.map((s) => [kind, s] as const));
      assert.ok(all.length >= 15, `${all.length} secrets checked`);
      for (const [kind, s] of all) {
        assert.ok(!output.includes(s), `${kind} ${s.slice(0, 8)}… appears in the output`);
        // also without its prefix (a key is normalised before hashing, a secret may be logged bare)
        const body = s.includes("_") ? s.slice(s.indexOf("_") + 1) : s;
        assert.ok(!output.includes(body), `${kind} ${s.slice(0, 8)}… (without prefix) appears in the output`);
      }
    });

    it("no secret is stored in clear in any column of any table; idempotent answers are sealed", async () => {
      const tables = await tableNames(db.url);
      assert.ok(tables.includes("licenses") && tables.includes("idempotency_records") && tables.includes("webhook_endpoints"), tables.join(","));
      const kept = Object.entries(secrets)
        .filter(([kind]) => kind !== "guess")
        .flatMap(([kind, list]) => list.map((s) => [kind, s, s.slice(s.indexOf("_") + 1)] as const));
      await withDb(db.url, async (q) => {
        let rows = 0;
        for (const t of tables) {
          const dump = await q(`SELECT * FROM ${t}`);
          rows += dump.length;
          const text = JSON.stringify(dump);
          for (const [kind, s, body] of kept) {
            assert.ok(!text.includes(s) && !text.includes(body), `${kind} ${s.slice(0, 8)}… stored in clear in table ${t}`);
          }
        }
        assert.ok(rows > 50, `${rows} rows dumped`);
        const idem = await q("SELECT response_status, response_body FROM idempotency_records WHERE response_status IS NOT NULL");
        assert.ok(
          idem.some((r) => Number(r.response_status) === 201),
          "the license create's answer is stored",
        );
        for (const r of idem) assert.ok(!String(r.response_body).trimStart().startsWith("{"), "stored answers are sealed, not JSON");
      });
    });
  });
}

describe("constant-time comparison of secret material", () => {
  it("secretsEqual: equal, unequal, different lengths, strings and buffers", () => {
    assert.equal(secretsEqual("whsec_abc", "whsec_abc"), true);
    assert.equal(secretsEqual("whsec_abc", "whsec_abd"), false);
    assert.equal(secretsEqual("whsec_abc", "whsec_abcd"), false);
    assert.equal(secretsEqual("", ""), true);
    assert.equal(secretsEqual(Buffer.from("k"), "k"), true);
  });

  it("the master-key check value is compared in constant time and refuses another key or a damaged value", () => {
    const key = randomBytes(32);
    const stored = masterKeyCheck(key);
    assert.equal(masterKeyMatches(key, stored), true);
    assert.equal(masterKeyMatches(randomBytes(32), stored), false);
    assert.equal(masterKeyMatches(key, stored.slice(0, -2)), false);
    assert.equal(masterKeyMatches(key, ""), false);
  });

  it("no source file compares secret material with === or !== (credentials are looked up by keyed hash)", () => {
    // Case-sensitive on purpose: SIGNATURE_ALGORITHM names an algorithm, not secret material.
    const SECRETISH = /(secret|Secret|signature|Signature|hmac|Hmac|\bmac\b|token_hash|key_hash|keyHash|password|masterKey)/;
    // Comparisons that are not of secret material, each with its reason.
    const ALLOWED: RegExp[] = [
      /(===|!==)\s*(undefined|null|true|false|""|'[^']*'|"[^"]*"|\d+)(?!\w)/, // presence, flags, literals
      /\b(undefined|null)\s*(===|!==)/,
      /request_hash !== hash/, // SHA-256 of the request (path, query, body): not a secret
      /this\.#entries\.get\(entry\.keyHash\) === entry\b/, // identity of a cache entry object, not a comparison of hashes
      /parsed\.keyHash === keyHash/, // SDK: the client's own cache file against its own key, on its machine
    ];
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".ts")) {
          fs.readFileSync(p, "utf8")
            .split("\n")
            .forEach((source, i) => {
              // string literals say nothing about what is compared ("…signature…" in a message)
              const line = source.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '""');
              if (!/(===|!==)/.test(line) || !SECRETISH.test(line) || line.trimStart().startsWith("//")) return;
              // each comparison on the line must be allowed
              const parts = line.split(/&&|\|\||\?|,|;/).filter((x) => /(===|!==)/.test(x) && SECRETISH.test(x));
              if (parts.some((x) => !ALLOWED.some((a) => a.test(x)))) offenders.push(`${path.relative(serverDir, p)}:${i + 1}: ${source.trim()}`);
            });
        }
      }
    };
    walk(path.join(serverDir, "src"));
    walk(path.join(serverDir, "../sdk/src"));
    assert.deepEqual(offenders, []);
  });
});
