// Runs every test/**/*.test.ts with node's test runner (TypeScript through tsx). Extra arguments
// are test file filters: `npm test -- idempotency` runs the files whose path contains "idempotency".
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p);
    else if (entry.name.endsWith(".test.ts")) files.push(path.relative(root, p));
  }
})(path.join(root, "test"));
const selected = files.filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (selected.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const engines = process.env.LICENSEKIT_TEST_DATABASE_URL ? "sqlite + postgres" : "sqlite only (set LICENSEKIT_TEST_DATABASE_URL for postgres)";
console.log(`running ${selected.length} test files on ${engines}`);
// A full run also records every answer's status and then checks that each status a management
// operation documents was produced by some test (test/helpers/status-coverage.ts).
const statusLog = filters.length === 0 ? path.join(fs.mkdtempSync(path.join(os.tmpdir(), "lk-status-")), "statuses.log") : undefined;
const env = { ...process.env, LICENSEKIT_LOG_LEVEL: process.env.LICENSEKIT_LOG_LEVEL ?? "silent" };
if (statusLog) env.LICENSEKIT_TEST_STATUS_LOG = statusLog;
const res = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=180000", "--test-reporter=spec", ...selected],
  { cwd: root, stdio: "inherit", env },
);
if (res.status !== 0 || !statusLog) process.exit(res.status ?? 1);
const coverage = spawnSync(process.execPath, ["--import", "tsx", "test/helpers/status-coverage.ts", statusLog], { cwd: root, stdio: "inherit", env });
fs.rmSync(path.dirname(statusLog), { recursive: true, force: true });
process.exit(coverage.status ?? 1);
