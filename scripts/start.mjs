// `npm start`: builds the server when dist/ is missing or older than any source file, then runs
// `licensekit <args>` (default `serve`) in this process so signals reach it directly.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const server = path.join(root, "packages/server");
const cli = path.join(server, "dist/cli.js");

function newest(dir) {
  let latest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return latest;
}

const sourceTime = Math.max(
  newest(path.join(server, "src")),
  fs.statSync(path.join(server, "tsconfig.json")).mtimeMs,
  fs.statSync(path.join(server, "tsconfig.build.json")).mtimeMs,
);
const built = fs.existsSync(cli) ? fs.statSync(cli).mtimeMs : 0;
if (built < sourceTime) {
  process.stderr.write("licensekit: building the server (dist/ is missing or stale)...\n");
  fs.rmSync(path.join(server, "dist"), { recursive: true, force: true });
  const tsc = path.join(root, "node_modules/typescript/bin/tsc");
  const res = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: server, stdio: "inherit" });
  if (res.status !== 0) process.exit(res.status ?? 1);
}

const args = process.argv.slice(2);
process.argv = [process.argv[0], cli, ...(args.length ? args : ["serve"])];
await import(pathToFileURL(cli).href);
