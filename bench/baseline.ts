// The bare baseline (issue 8, item 2): node:http only, doing what a validation cannot avoid — parse
// the JSON body, hash the license key (HMAC-SHA256 under the same derived key as the server's
// CredentialHasher), look the license up in a Map, build the same `data` as validate, sign
// JSON.stringify(data) with Ed25519 and answer the `{data, signature, meta}` envelope.
//
// Started by bench/run.ts as its own process:
//   BASELINE_PORT, BASELINE_MASTER_KEY (64 hex), BASELINE_KEYS_FILE (lines: key \t license id \t
//   device id \t fingerprint), BASELINE_EXPIRES_AT (epoch ms).
import { createHmac, generateKeyPairSync, hkdfSync, randomBytes, sign } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import Fastify from "fastify";

const port = Number(process.env.BASELINE_PORT ?? 18081);
const master = Buffer.from(process.env.BASELINE_MASTER_KEY ?? "", "hex");
const expiresIso = new Date(Number(process.env.BASELINE_EXPIRES_AT)).toISOString();
const hashKey = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), "licensekit/credential-hash/v1", 32));
const hash = (s: string) => createHmac("sha256", hashKey).update(s, "utf8").digest("hex");

interface Lic {
  id: string;
  deviceId: string;
  fingerprint: string;
}
const byHash = new Map<string, Lic>();
for (const line of fs.readFileSync(process.env.BASELINE_KEYS_FILE ?? "", "utf8").split("\n")) {
  if (!line) continue;
  const [key, id, deviceId, fingerprint] = line.split("\t") as [string, string, string, string];
  byHash.set(hash(key), { id, deviceId, fingerprint });
}

const { privateKey } = generateKeyPairSync("ed25519");
const kid = "baseline";

/** What a validation cannot avoid past parsing, given the Authorization header and the parsed body. */
function answer(auth: string, body: { fingerprint?: string }): { status: number; body: string } {
  const lic = auth.startsWith("License ") ? byHash.get(hash(auth.slice(8))) : undefined;
  if (!lic) return { status: 401, body: '{"error":{"code":"UNAUTHORIZED"}}' };
  if (body.fingerprint !== lic.fingerprint) return { status: 403, body: '{"error":{"code":"DEVICE_NOT_ACTIVATED"}}' };
  const now = Date.now();
  const data = {
    license_id: lic.id,
    status: "active",
    license_type: "subscription",
    entitlement_version: 1,
    issued_at: new Date(now).toISOString(),
    next_check_at: new Date(now + 1440 * 60_000).toISOString(),
    expires_at: expiresIso,
    device_id: lic.deviceId,
    features: [{ code: "bench.units", enabled: true, quota: 1_000_000_000_000, consumed: 0, remaining: 1_000_000_000_000 }],
  };
  const dataJson = JSON.stringify(data);
  const signature = { alg: "Ed25519", kid, value: sign(null, Buffer.from(dataJson, "utf8"), privateKey).toString("base64") };
  const meta = { request_id: `req_${randomBytes(15).toString("base64url")}`, timestamp: new Date(now).toISOString() };
  return { status: 200, body: `{"data":${dataJson},"signature":${JSON.stringify(signature)},"meta":${JSON.stringify(meta)}}` };
}

const JSON_TYPE = "application/json; charset=utf-8";

// BASELINE_FRAMEWORK=fastify (`npm run bench -- --floor`): the same handler as a Fastify route with
// Fastify's own body parsing and no hooks, i.e. the framework's floor under the server's validate.
const server =
  process.env.BASELINE_FRAMEWORK === "fastify"
    ? await (async () => {
        const app = Fastify({ keepAliveTimeout: 65_000 });
        app.post("/*", async (req, reply) => {
          const a = answer(req.headers.authorization ?? "", (req.body ?? {}) as { fingerprint?: string });
          return reply.code(a.status).type(JSON_TYPE).send(a.body);
        });
        await app.ready();
        return app.server;
      })()
    : http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          let body: { fingerprint?: string } | undefined;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {}
          const a = body ? answer(req.headers.authorization ?? "", body) : { status: 400, body: '{"error":{"code":"INVALID_JSON"}}' };
          res.writeHead(a.status, { "content-type": JSON_TYPE, "content-length": Buffer.byteLength(a.body) });
          res.end(a.body);
        });
      });
server.keepAliveTimeout = 65_000;
server.listen(port, "127.0.0.1", () => process.stdout.write(`baseline listening on 127.0.0.1:${port} (${byHash.size} licenses)\n`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
