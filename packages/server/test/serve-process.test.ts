// The real `licensekit serve` process: first start bootstraps and prints the admin token once,
// serves over HTTP, shuts down cleanly on SIGTERM, and a second start on the same data keeps
// everything (and refuses a master key that does not match the database).
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { sdkVerify } from "./helpers/verify.js";

const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-serve-"));
const env: NodeJS.ProcessEnv = { ...process.env, LICENSEKIT_DATABASE_URL: `sqlite:${path.join(dir, "lk.db")}`, LICENSEKIT_PORT: "0", LICENSEKIT_LOG_LEVEL: "info" };
delete env.LICENSEKIT_BOOTSTRAP_TOKEN;
delete env.LICENSEKIT_MASTER_KEY;
delete env.LICENSEKIT_DATA_DIR;

interface Running {
  child: ChildProcess;
  base: string;
  stdout: () => string;
}

function start(extraEnv: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "serve"], { cwd: serverDir, env: { ...env, ...extraEnv } });
  let out = "";
  let err = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out} ${err}`)), 30_000);
    child.stderr!.on("data", (d) => {
      err += d;
    });
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /"port":(\d+),.*"msg":"licensekit listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        // give the bootstrap print (written right after the log line) a moment to arrive
        setTimeout(() => resolve({ child, base: `http://127.0.0.1:${m[1]}`, stdout: () => out }), 200);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${err}`));
    });
  });
}

function stop(r: Running): Promise<number | null> {
  return new Promise((resolve) => {
    r.child.removeAllListeners("exit");
    r.child.on("exit", (code) => resolve(code));
    r.child.kill("SIGTERM");
  });
}

async function call(base: string, method: string, url: string, auth?: string, body?: unknown, extra: Record<string, string> = {}) {
  const res = await fetch(base + url, {
    method,
    headers: { ...(auth ? { authorization: auth } : {}), ...(body ? { "content-type": "application/json" } : {}), ...extra },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: (await res.json()) as Record<string, never> & { data: never } };
}

describe("licensekit serve (real process, SQLite file)", () => {
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  let token = "";
  let licenseKey = "";
  // biome-ignore lint/suspicious/noExplicitAny: parsed answer kept for re-verification
  let firstAnswer: any;

  it("first start migrates, creates the master key file (0600) and prints the admin token once", async () => {
    const r = await start();
    const m = /Bearer <token>|\n {2}(lkm_[A-Za-z0-9]{40})\n/.exec(r.stdout());
    assert.ok(m?.[1], `token printed: ${r.stdout()}`);
    token = m[1];
    assert.equal(r.stdout().split(token).length - 1, 1, "the token appears exactly once in the output");
    const stat = fs.statSync(path.join(dir, "master.key"));
    assert.equal(stat.mode & 0o777, 0o600);

    const health = await call(r.base, "GET", "/healthz");
    assert.equal(health.status, 200);
    const product = await call(r.base, "POST", "/api/v1/products", `Bearer ${token}`, { name: "Desk", code: "desk" });
    assert.equal(product.status, 201);
    // biome-ignore lint/suspicious/noExplicitAny: JSON
    const pid = (product.json.data as any).id;
    const policy = await call(r.base, "POST", `/api/v1/products/${pid}/policies`, `Bearer ${token}`, { name: "P", code: "p", license_type: "perpetual" });
    // biome-ignore lint/suspicious/noExplicitAny: JSON
    const lic = await call(r.base, "POST", "/api/v1/licenses", `Bearer ${token}`, { product_id: pid, policy_id: (policy.json.data as any).id });
    assert.equal(lic.status, 201);
    // biome-ignore lint/suspicious/noExplicitAny: JSON
    licenseKey = (lic.json.data as any).license_key;
    const act = await call(r.base, "POST", "/api/v1/license/activate", `License ${licenseKey}`, { fingerprint: "m1" }, { "idempotency-key": "k1" });
    assert.equal(act.status, 200);
    firstAnswer = act.json;
    assert.equal(await stop(r), 0, "SIGTERM exits 0");
  });

  it("a second start keeps data and keys, prints no token, and earlier answers still verify", async () => {
    const r = await start();
    assert.ok(!/lkm_[A-Za-z0-9]{40}/.test(r.stdout()), "no token printed on restart");
    const val = await call(r.base, "POST", "/api/v1/license/validate", `License ${licenseKey}`, { fingerprint: "m1" });
    assert.equal(val.status, 200);
    const keys = (await call(r.base, "GET", "/api/v1/system/public-keys")).json.data;
    assert.equal(await sdkVerify(firstAnswer, keys), true);
    assert.equal(await sdkVerify(val.json, keys), true);
    const list = await call(r.base, "GET", "/api/v1/products", `Bearer ${token}`);
    assert.equal(list.status, 200);
    assert.equal((list.json.data as unknown[]).length, 1);
    assert.equal(await stop(r), 0);
  });

  it("refuses to start with a master key that does not match the database", () => {
    const res = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "serve"], {
      cwd: serverDir,
      env: { ...env, LICENSEKIT_MASTER_KEY: "cd".repeat(32) },
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(res.status, 1);
    assert.match(res.stderr, /master key .* does not match/);
  });

  it("`licensekit migrate` reports an up-to-date database", () => {
    const res = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "migrate"], { cwd: serverDir, env, encoding: "utf8", timeout: 30_000 });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /up to date/);
  });
});
