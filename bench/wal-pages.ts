// Counts the pages a runtime write commits on SQLite, by b-tree (table or index). Each page a
// commit changed is one WAL frame, and SQLite writes each frame with two pwrite calls, so on a
// machine where a system call is slow the pages per commit are a large part of a write's cost
// (docs/benchmarks.md, "Fewer pages per commit").
//   node --import tsx bench/wal-pages.ts [activate|consume] [requests]
// Builds the server if it is stale (as `npm run bench` does), starts it the README way on a fresh SQLite file seeded with 2,000 licenses (bench/seed.ts),
// with the background checkpoint thread off and the batched stamps held back, so that nothing but the
// requests writes to the WAL. Sends the requests one at a time, each with its own Idempotency-Key,
// reads the frames each one appended, and names each frame's page by SQLite's dbstat table. The first
// tenth of the requests are left out of the tally (first touches of the page cache and the file).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { buildIfNeeded, cli, freePort, stop, waitReady } from "./processes.js";
import { seed } from "./seed.js";

const kind = process.argv[2] ?? "activate";
const requests = Number(process.argv[3] ?? 40);
if (kind !== "activate" && kind !== "consume") throw new Error("usage: wal-pages.ts [activate|consume] [requests]");
buildIfNeeded((s) => process.stderr.write(`${s}\n`));

const MASTER_KEY = "5a".repeat(32);
const PORT = await freePort();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-wal-pages-"));
const file = path.join(dir, "lk.db");
const url = `sqlite:${file}`;
const env = {
  ...process.env,
  LICENSEKIT_DATABASE_URL: url,
  LICENSEKIT_DATA_DIR: dir,
  LICENSEKIT_MASTER_KEY: MASTER_KEY,
  LICENSEKIT_BOOTSTRAP_TOKEN: "lkm_walpagesbootstraptoken0000",
  LICENSEKIT_HOST: "127.0.0.1",
  LICENSEKIT_PORT: String(PORT),
  LICENSEKIT_LOG_LEVEL: "warn",
  LICENSEKIT_SQLITE_CHECKPOINT_MS: "0",
  LICENSEKIT_SIDE_EFFECT_FLUSH_MS: "600000",
  LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND: "0",
};

/** WAL layout: a 32-byte header, then frames of a 24-byte header (page number first) and one page. */
const WAL_HEADER = 32;
const FRAME_HEADER = 24;

let server: ChildProcess | undefined;
try {
  const migrated = spawnSync(process.execPath, [cli, "migrate"], { env, encoding: "utf8" });
  if (migrated.status !== 0) throw new Error(`migrate failed: ${migrated.stderr}`);
  const seeded = await seed({ engine: "sqlite", url, file }, Buffer.from(MASTER_KEY, "hex"), 2_000, 0, () => {});
  server = spawn(process.execPath, [cli, "serve"], { env, stdio: ["ignore", "inherit", "inherit"] });
  const base = `http://127.0.0.1:${PORT}`;
  await waitReady(`${base}/readyz`, server, 30_000);

  const reader = new Database(file, { readonly: true });
  const pageSize = reader.pragma("page_size", { simple: true }) as number;
  const owner = reader.prepare("select name, pagetype from dbstat where pageno = ?");
  const wal = `${file}-wal`;
  const tally = new Map<string, number>();
  const perRequest: number[] = [];
  const skip = Math.ceil(requests / 10);
  for (let i = 0; i < requests; i++) {
    const before = fs.readFileSync(wal);
    const l = seeded.licenses[i]!;
    const body =
      kind === "activate"
        ? { fingerprint: `wal-pages-${i}`, hostname: "bench" }
        : { fingerprint: l.fingerprint, feature_code: seeded.featureCode, amount: 1, event_id: `wal-pages-${i}` };
    const res = await fetch(`${base}/api/v1/license/${kind}`, {
      method: "POST",
      headers: { authorization: `License ${l.key}`, "content-type": "application/json", "idempotency-key": `wal-pages-${kind}-${i}` },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${kind} ${i}: ${res.status} ${await res.text()}`);
    const after = fs.readFileSync(wal);
    // The writer restarted the WAL from its start (a new salt): this request's frames cannot be told apart.
    if (before.length < WAL_HEADER || after.readUInt32BE(16) !== before.readUInt32BE(16)) continue;
    const pages: number[] = [];
    for (let at = before.length; at + FRAME_HEADER + pageSize <= after.length; at += FRAME_HEADER + pageSize) pages.push(after.readUInt32BE(at));
    if (i < skip) continue;
    perRequest.push(pages.length);
    for (const p of pages) {
      const o = owner.get(p) as { name: string; pagetype: string } | undefined;
      const name = o ? `${o.name} (${o.pagetype})` : `page ${p} (free)`;
      tally.set(name, (tally.get(name) ?? 0) + 1);
    }
  }
  reader.close();
  const n = perRequest.length;
  const mean = perRequest.reduce((a, b) => a + b, 0) / n;
  console.log(`${kind}: ${n} requests tallied, ${mean.toFixed(1)} pages per commit (min ${Math.min(...perRequest)}, max ${Math.max(...perRequest)})`);
  console.log("pages per request, by b-tree:");
  for (const [name, count] of [...tally].sort((a, b) => b[1] - a[1])) console.log(`  ${(count / n).toFixed(2)}  ${name}`);
} finally {
  if (server) await stop(server);
  fs.rmSync(dir, { recursive: true, force: true });
}
