// Measures what the runtime cache (packages/server/src/cache/runtime-cache.ts) really takes on the
// V8 heap per cached license, against its own estimate (the one LICENSEKIT_RUNTIME_CACHE_MB is
// enforced by): seeds a SQLite file the benchmark's way (one device and one feature per license),
// loads every license, its device and its features through the cache, and compares the heap growth
// after a full GC with `cache.bytes`.
//   node --expose-gc --import tsx bench/cache-memory.ts [licenses=100000]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { RuntimeCache } from "../packages/server/src/cache/runtime-cache.js";
import { CredentialHasher } from "../packages/server/src/crypto/credential-hash.js";
import { normalizeBinding } from "../packages/server/src/domain/binding.js";
import { openStore } from "../packages/server/src/store/db.js";
import { migrateToLatest } from "../packages/server/src/store/migrator.js";
import { seed } from "./seed.js";

const count = Number(process.argv[2] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
if (!Number.isInteger(count) || count < 1000) throw new Error("licenses: a whole number ≥ 1000");

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-cache-memory-"));
try {
  const file = path.join(dir, "bench.db");
  const database = { engine: "sqlite" as const, url: `sqlite:${file}`, file };
  const masterKey = Buffer.alloc(32, 7);
  const store = await openStore(database);
  await migrateToLatest(store);
  const seeded = await seed(database, masterKey, count, 0, (s) => process.stderr.write(`${s}\n`));
  const hasher = new CredentialHasher(masterKey);
  const work = seeded.licenses.map((l) => ({ keyHash: hasher.hash(l.key), bindingKey: normalizeBinding({ fingerprint: l.fingerprint }).key }));
  seeded.licenses.length = 0;

  const cache = new RuntimeCache(10_000_000);
  cache.setTrust(() => true);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const w of work) {
    const entry = await cache.license(store.db, w.keyHash);
    if (!entry) throw new Error("a seeded license was not found");
    await cache.device(store.db, entry, w.bindingKey);
    await cache.features(store.db, entry);
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  const result = {
    licenses: cache.size,
    heap_bytes_per_license: Math.round(grown / cache.size),
    estimated_bytes_per_license: Math.round(cache.bytes / cache.size),
    estimate_over_heap: Number((cache.bytes / grown).toFixed(2)),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await store.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
