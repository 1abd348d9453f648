// The bench scripts' process handling, shared by `npm run bench` (bench/run.ts) and
// bench/wal-pages.ts: where the built server is, building it when stale, a free loopback port,
// waiting for a process to answer, and stopping it.
import { type ChildProcess, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const serverDir = path.join(root, "packages/server");
/** The built server's CLI, started the README way (`node packages/server/dist/cli.js serve`). */
export const cli = path.join(serverDir, "dist/cli.js");

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port nothing listens on at the moment, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function newest(dir: string): number {
  let latest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    latest = Math.max(latest, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return latest;
}

/** Builds the server when dist/ is missing or older than src/ (the staleness rule of scripts/start.mjs); a failed build keeps an existing dist/. */
export function buildIfNeeded(log: (s: string) => void): void {
  const built = fs.existsSync(cli) ? fs.statSync(cli).mtimeMs : 0;
  if (built >= newest(path.join(serverDir, "src"))) return;
  log("bench: building the server (dist/ is missing or stale)...");
  const r = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: serverDir, stdio: "inherit" });
  if (r.status !== 0) {
    if (!fs.existsSync(cli)) throw new Error("the server build failed");
    log("bench: WARNING the build failed; using the existing dist/");
  }
}

/** Waits until `url` answers 2xx; fails early if `child` exits, or after timeoutMs. */
export async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url}: not ready after ${timeoutMs} ms`);
}

/** SIGTERM, up to 30 s for the process to exit, then SIGKILL. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([done, sleep(30_000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
}
