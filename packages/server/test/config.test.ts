// Settings are read from the environment and validated at start; a bad value stops the process
// with one line naming the setting and a non-zero exit code.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../src/config.js";

const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

describe("configuration", () => {
  it("has working defaults: embedded SQLite under ./data, 127.0.0.1:8080", () => {
    const c = loadConfig({});
    assert.equal(c.database.engine, "sqlite");
    assert.ok(c.database.engine === "sqlite" && c.database.file.endsWith(path.join("data", "licensekit.db")));
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.port, 8080);
    assert.equal(c.masterKey, undefined);
    assert.equal(c.logLevel, "info");
    assert.deepEqual(c.trustedProxies, []);
    assert.equal(c.idempotencyRetentionHours, 24);
  });

  it("reads PostgreSQL URLs, master keys in hex or base64, proxies and levels", () => {
    const hex = "ab".repeat(32);
    const c = loadConfig({
      LICENSEKIT_DATABASE_URL: "postgres://u@db.example:5432/lk",
      LICENSEKIT_MASTER_KEY: hex,
      LICENSEKIT_TRUSTED_PROXIES: "10.0.0.0/8, 127.0.0.1",
      LICENSEKIT_LOG_LEVEL: "debug",
      LICENSEKIT_PORT: "9000",
    });
    assert.equal(c.database.engine, "postgres");
    assert.equal(c.masterKey?.toString("hex"), hex);
    assert.deepEqual(c.trustedProxies, ["10.0.0.0/8", "127.0.0.1"]);
    assert.equal(loadConfig({ LICENSEKIT_MASTER_KEY: Buffer.alloc(32, 7).toString("base64") }).masterKey?.length, 32);
  });

  const bad: [string, string][] = [
    ["LICENSEKIT_DATABASE_URL", "mysql://x"],
    ["LICENSEKIT_DATABASE_URL", "sqlite:"],
    ["LICENSEKIT_PORT", "80a"],
    ["LICENSEKIT_PORT", "70000"],
    ["LICENSEKIT_MASTER_KEY", "too-short"],
    ["LICENSEKIT_BOOTSTRAP_TOKEN", "not-a-token"],
    ["LICENSEKIT_LOG_LEVEL", "loud"],
    ["LICENSEKIT_TRUSTED_PROXIES", "10.0.0.0/99"],
    ["LICENSEKIT_BODY_LIMIT_BYTES", "12"],
    ["LICENSEKIT_IDEMPOTENCY_RETENTION_HOURS", "0"],
    ["LICENSEKIT_HOST", "bad host!"],
  ];
  for (const [name, value] of bad) {
    it(`refuses ${name}=${JSON.stringify(value)} naming the setting`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.setting === name && err.message.startsWith(`${name}:`),
      );
    });
  }

  it("a process started with a bad value exits non-zero with one line naming the setting", () => {
    const res = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "serve"], {
      cwd: serverDir,
      env: { ...process.env, LICENSEKIT_PORT: "not-a-port" },
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(res.status, 2);
    const lines = res.stderr.trim().split("\n");
    assert.equal(lines.length, 1, res.stderr);
    assert.match(lines[0]!, /LICENSEKIT_PORT/);
  });
});
