// The README's seed-style example (validate, load public keys, verify, catch ApiError and read code,
// detail, meta.request_id), pasted here as written and run against a real server; and every script
// in examples/ run as a child process against a real server on a local port.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ADMIN_TOKEN, type Harness, issueLicense, listen, startHarness } from "../../server/test/helpers/harness.js";
import { ApiError, PublicKeyStore, RuntimeClient, SignatureVerificationError, SystemClient, TransportError, verifyRuntimeResult } from "../src/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The README's first example, unchanged except that it returns what it printed. */
async function readmeExample(env: Record<string, string | undefined>): Promise<string[]> {
  const out: string[] = [];
  const console = { log: (...a: unknown[]) => out.push(a.join(" ")), error: (...a: unknown[]) => out.push(a.join(" ")) };
  const process = { env };
  // --- pasted from packages/sdk/README.md ---
  const baseUrl = process.env.LICENSEKIT_BASE_URL ?? "http://127.0.0.1:8080";
  const runtime = new RuntimeClient({ baseUrl, licenseKey: process.env.LICENSEKIT_LICENSE_KEY! });
  const system = new SystemClient({ baseUrl });

  try {
    const result = await runtime.validateLicense({ body: { fingerprint: "host-123", app_version: "1.4.0" } });
    const publicKeys = await system.listPublicKeys();
    const verified = await verifyRuntimeResult(result, new PublicKeyStore(publicKeys.data));
    console.log(verified.data.status, verified.data.features);
  } catch (err) {
    if (err instanceof SignatureVerificationError) {
      // Not a denial: the answer was altered or not from your server. Do not trust it.
      console.error("tampered answer:", err.reason);
    } else if (err instanceof ApiError) {
      // A genuine answer from the server: act on the code, keep the request id.
      console.error(err.code, err.detail, err.meta?.request_id);
    } else if (err instanceof TransportError) {
      // The server was not reached (after the safe retries): keep running on your cached entitlement.
      console.error("server unreachable:", err.message);
    } else {
      throw err;
    }
  }
  // --- end of the pasted example ---
  return out;
}

describe("README and examples against a real server", () => {
  let h: Harness;
  let baseUrl: string;
  before(async () => {
    h = await startHarness("sqlite");
    baseUrl = await listen(h);
  });
  after(async () => h?.close());

  it("the README example validates and verifies a license (status active, features listed)", async () => {
    const lic = await issueLicense(h, { max_activations: 2 });
    const out = await readmeExample({ LICENSEKIT_BASE_URL: baseUrl, LICENSEKIT_LICENSE_KEY: lic.key });
    assert.deepEqual(out, ["active "]);
  });

  it("the README example reads code, detail and request id from a denial", async () => {
    const lic = await issueLicense(h);
    await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/suspend` });
    const out = await readmeExample({ LICENSEKIT_BASE_URL: baseUrl, LICENSEKIT_LICENSE_KEY: lic.key });
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^LICENSE_INACTIVE license is suspended req_[A-Za-z0-9_-]+$/);
  });

  it("the README example reports an unreachable server as a transport failure, not a denial", async () => {
    const out = await readmeExample({ LICENSEKIT_BASE_URL: "http://127.0.0.1:9", LICENSEKIT_LICENSE_KEY: "lsk_00000000000000000000000000000000" });
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^server unreachable:/);
  });

  for (const file of fs.readdirSync(path.join(here, "../examples")).filter((f) => f.endsWith(".ts"))) {
    // Asynchronous on purpose: the server answering the example runs in this process.
    it(`examples/${file} runs to completion`, async () => {
      const res = await promisify(execFile)(process.execPath, ["--import", "tsx", path.join(here, "../examples", file)], {
        env: { ...process.env, LICENSEKIT_BASE_URL: baseUrl, LICENSEKIT_MANAGEMENT_TOKEN: ADMIN_TOKEN },
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.match(res.stdout, /validated: active/, `${res.stdout}\n${res.stderr}`);
      assert.match(res.stdout, /denied as expected: DEVICE_NOT_ACTIVATED/);
    });
  }
});
