// `npm run soak` (not part of `npm test`): a longer mixed load against a real `licensekit serve`
// process on loopback — activations, validations, consumes, floating checkout/heartbeat/checkin,
// deactivations, management writes and reads — on SQLite, and also on PostgreSQL when
// LICENSEKIT_SOAK_PG_URL names a server (a fresh database is created there and dropped after).
// LICENSEKIT_SOAK_SECONDS sets the duration per engine (default 300), LICENSEKIT_SOAK_LANES the
// concurrency (default 16). Each license belongs to one lane, so the expected state of every
// license follows from the answers alone; at the end the database must hold exactly that.
// Invariants: no 5xx and no unexpected answer; devices, consumed units, live leases and customers
// reconcile with the database; the server's RSS grows by less than max(64 MiB, 50 %) after warm-up.
// Prints a summary and exits 1 when an invariant fails.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { type Answer, admin, call, freePort, HIGH_LIMITS, ServeProcess, sleep, withDb } from "./processes.js";

const SECONDS = Number(process.env.LICENSEKIT_SOAK_SECONDS ?? 300);
const LANES = Number(process.env.LICENSEKIT_SOAK_LANES ?? 16);
const LICENSES_PER_LANE = 2;
const MAX_ACTIVATIONS = 5;
const FINGERPRINTS = 8;
const QUOTA = 400;
const TOKEN = `lkm_${"S".repeat(40)}`;
const MB = 1024 * 1024;

/** Refusals that are part of the load's design; anything else non-2xx is a failure. */
const EXPECTED_REFUSALS = new Set(["409 ACTIVATION_LIMIT_EXCEEDED", "409 FEATURE_QUOTA_EXCEEDED", "409 FLOATING_LIMIT_EXCEEDED"]);

interface LicenseState {
  id: string;
  key: string;
  featureId: string;
  active: Set<string>;
  consumed: number;
  liveLeases: number;
}

interface Stats {
  byOp: Map<string, number[]>;
  outcomes: Map<string, number>;
  unexpected: string[];
  serverErrors: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function soak(engine: "sqlite" | "postgres", dbUrl: string, dataDir: string): Promise<boolean> {
  const port = await freePort();
  const server = await ServeProcess.start({
    port,
    env: {
      LICENSEKIT_DATABASE_URL: dbUrl,
      LICENSEKIT_DATA_DIR: dataDir,
      LICENSEKIT_BOOTSTRAP_TOKEN: TOKEN,
      LICENSEKIT_LOG_LEVEL: "warn",
      ...HIGH_LIMITS,
    },
  });
  const base = server.base;
  const m = admin(base, TOKEN);
  const stats: Stats = { byOp: new Map(), outcomes: new Map(), unexpected: [], serverErrors: 0 };
  let customers = 0;
  const customerIds: string[] = [];

  const record = (op: string, r: Answer) => {
    const list = stats.byOp.get(op) ?? [];
    list.push(r.ms);
    stats.byOp.set(op, list);
    const outcome = r.status < 300 ? String(r.status) : `${r.status} ${r.json?.error?.code}`;
    stats.outcomes.set(`${op} ${outcome}`, (stats.outcomes.get(`${op} ${outcome}`) ?? 0) + 1);
    if (r.status >= 500) stats.serverErrors++;
    if (r.status >= 300 && !EXPECTED_REFUSALS.has(outcome) && stats.unexpected.length < 20) stats.unexpected.push(`${op}: ${r.status} ${r.text.slice(0, 300)}`);
    return r;
  };

  // Catalogue: one product, one policy, LANES × LICENSES_PER_LANE licenses with a metered feature.
  const product = await m("/products", { name: "Soak", code: `soak-${engine}` });
  const policy = await m(`/products/${product.id}/policies`, {
    name: "Soak",
    code: "soak",
    license_type: "perpetual",
    max_activations: MAX_ACTIVATIONS,
    max_floating_users: 2,
    floating_timeout_minutes: 30,
  });
  const feature = await m(`/products/${product.id}/features`, { name: "Units", code: "units" });
  const lanes: LicenseState[][] = [];
  for (let l = 0; l < LANES; l++) {
    const mine: LicenseState[] = [];
    for (let k = 0; k < LICENSES_PER_LANE; k++) {
      const lic = await m("/licenses", { product_id: product.id, policy_id: policy.id });
      await m(`/licenses/${lic.license.id}/features`, { feature_id: feature.id, max_consumptions: QUOTA });
      mine.push({ id: lic.license.id, key: lic.license_key, featureId: feature.id, active: new Set(), consumed: 0, liveLeases: 0 });
    }
    lanes.push(mine);
  }

  // RSS of the server process, every 2 s.
  const rss: { t: number; bytes: number }[] = [];
  const started = Date.now();
  const deadline = started + SECONDS * 1000;
  const sampler = setInterval(() => rss.push({ t: Date.now() - started, bytes: server.rssBytes() }), 2000);
  rss.push({ t: 0, bytes: server.rssBytes() });

  let seq = 0;
  const idem = () => `soak-${++seq}`;
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
  const rt = (op: string, lic: LicenseState, p: string, body: unknown, key?: string) =>
    call(base, `/api/v1/license/${p}`, { auth: `License ${lic.key}`, body, headers: key ? { "idempotency-key": key } : {} }).then((r) => record(op, r));

  async function step(lic: LicenseState): Promise<void> {
    const roll = Math.random();
    const bound = [...lic.active];
    if (bound.length === 0 || roll < 0.1) {
      const fp = `fp-${Math.floor(Math.random() * FINGERPRINTS)}`;
      const r = await rt("activate", lic, "activate", { fingerprint: fp }, idem());
      if (r.status === 200) lic.active.add(fp);
      return;
    }
    const fp = pick(bound);
    if (roll < 0.45) {
      await rt("validate", lic, "validate", { fingerprint: fp });
    } else if (roll < 0.65) {
      const r = await rt("consume", lic, "consume", { fingerprint: fp, feature_code: "units", amount: 1, event_id: `ev-${++seq}` }, idem());
      if (r.status === 200) lic.consumed++;
    } else if (roll < 0.75) {
      const out = await rt("floating/checkout", lic, "floating/checkout", { fingerprint: fp }, idem());
      if (out.status !== 200) return;
      lic.liveLeases++;
      const lease = out.json.data.lease_token;
      await rt("floating/heartbeat", lic, "floating/heartbeat", { lease_token: lease }, idem());
      const done = await rt("floating/checkin", lic, "floating/checkin", { lease_token: lease }, idem());
      if (done.status === 200) lic.liveLeases--;
    } else if (roll < 0.8) {
      const r = await rt("deactivate", lic, "deactivate", { fingerprint: fp }, idem());
      if (r.status === 200) lic.active.delete(fp);
    } else if (roll < 0.9) {
      if (customerIds.length > 0 && Math.random() < 0.5) {
        record("updateCustomer", await call(base, `/api/v1/customers/${pick(customerIds)}`, { method: "PATCH", auth: `Bearer ${TOKEN}`, body: { name: `Renamed ${seq}` } }));
      } else {
        const code = `c-${randomBytes(6).toString("hex")}`;
        const r = record("createCustomer", await call(base, "/api/v1/customers", { auth: `Bearer ${TOKEN}`, body: { name: code, code }, headers: { "idempotency-key": idem() } }));
        if (r.status === 201) {
          customers++;
          customerIds.push(r.json.data.id);
        }
      }
    } else {
      record("listLicenses", await call(base, "/api/v1/licenses?limit=20", { auth: `Bearer ${TOKEN}` }));
    }
  }

  await Promise.all(
    lanes.map(async (mine) => {
      while (Date.now() < deadline) {
        for (const lic of mine) {
          try {
            await step(lic);
          } catch (err) {
            if (stats.unexpected.length < 20) stats.unexpected.push(`transport: ${(err as Error).message}`);
            stats.serverErrors++;
          }
        }
      }
    }),
  );
  clearInterval(sampler);
  rss.push({ t: Date.now() - started, bytes: server.rssBytes() });
  const elapsed = (Date.now() - started) / 1000;
  // Batched stamps and counters are flushed on shutdown; then read what the database holds.
  const exitCode = await server.stop();

  const problems: string[] = [];
  if (exitCode !== 0) problems.push(`server exit code ${exitCode}: ${server.stderr.slice(-500)}`);
  if (stats.serverErrors > 0) problems.push(`${stats.serverErrors} answers were 5xx or failed in transport`);
  problems.push(...stats.unexpected.map((u) => `unexpected answer: ${u}`));
  // The server's own error lines say why (request ids match the answers' meta.request_id).
  for (const line of server.logLines().filter((l) => Number(l.level) >= 50).slice(0, 5)) problems.push(`server log: ${JSON.stringify(line).slice(0, 1500)}`);
  const all = lanes.flat();
  await withDb(dbUrl, async (q) => {
    for (const lic of all) {
      const devices = await q("SELECT fingerprint FROM devices WHERE license_id = $1 AND status = 'active'", [lic.id]);
      const held = new Set(devices.map((d) => String(d.fingerprint)));
      if (held.size !== lic.active.size || [...lic.active].some((fp) => !held.has(fp)) || held.size > MAX_ACTIVATIONS) {
        problems.push(`license ${lic.id}: active devices ${[...held].sort()} in the database, ${[...lic.active].sort()} from the answers`);
      }
      const [lf] = await q("SELECT total_consumptions FROM license_features WHERE license_id = $1 AND feature_id = $2", [lic.id, lic.featureId]);
      if (Number(lf?.total_consumptions) !== lic.consumed) problems.push(`license ${lic.id}: ${lf?.total_consumptions} units in the database, ${lic.consumed} granted`);
      const leases = await q("SELECT id FROM floating_leases WHERE license_id = $1 AND status = 'active' AND expires_at > $2", [lic.id, Date.now()]);
      if (leases.length !== lic.liveLeases) problems.push(`license ${lic.id}: ${leases.length} live leases in the database, ${lic.liveLeases} from the answers`);
    }
    const [c] = await q("SELECT COUNT(*) AS n FROM customers");
    if (Number(c!.n) !== customers) problems.push(`${c!.n} customers in the database, ${customers} created`);
  });

  const warm = rss.find((s) => s.t >= SECONDS * 200) ?? rss[0]!;
  const end = rss[rss.length - 1]!;
  const peak = Math.max(...rss.map((s) => s.bytes));
  const growth = end.bytes - warm.bytes;
  if (warm.bytes > 0 && growth > Math.max(64 * MB, warm.bytes * 0.5)) problems.push(`RSS grew by ${(growth / MB).toFixed(1)} MiB after warm-up`);

  // Summary.
  const total = [...stats.byOp.values()].reduce((n, l) => n + l.length, 0);
  console.log(`\n== soak on ${engine}: ${elapsed.toFixed(0)} s, ${LANES} lanes, ${all.length} licenses ==`);
  console.log(`requests: ${total} (${(total / elapsed).toFixed(1)}/s), 5xx/transport failures: ${stats.serverErrors}`);
  console.log("operation            count    p50 ms   p99 ms");
  for (const [op, list] of [...stats.byOp.entries()].sort()) {
    const sorted = [...list].sort((a, b) => a - b);
    console.log(`${op.padEnd(20)} ${String(list.length).padStart(6)} ${percentile(sorted, 50).toFixed(1).padStart(9)} ${percentile(sorted, 99).toFixed(1).padStart(8)}`);
  }
  console.log("outcomes:");
  for (const [k, n] of [...stats.outcomes.entries()].sort()) console.log(`  ${k}: ${n}`);
  console.log(
    `reconciled: ${all.reduce((n, l) => n + l.active.size, 0)} active devices, ${all.reduce((n, l) => n + l.consumed, 0)} units consumed, ${all.reduce((n, l) => n + l.liveLeases, 0)} live leases, ${customers} customers`,
  );
  console.log(
    `server RSS: start ${(rss[0]!.bytes / MB).toFixed(1)} MiB, after warm-up ${(warm.bytes / MB).toFixed(1)} MiB, peak ${(peak / MB).toFixed(1)} MiB, end ${(end.bytes / MB).toFixed(1)} MiB (growth after warm-up ${(growth / MB).toFixed(1)} MiB)`,
  );
  console.log(problems.length === 0 ? "invariants: all hold" : `invariants FAILED:\n  ${problems.join("\n  ")}`);
  return problems.length === 0;
}

async function main(): Promise<void> {
  let ok = true;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-soak-"));
  try {
    ok = (await soak("sqlite", `sqlite:${path.join(dir, "soak.db")}`, dir)) && ok;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const pgUrl = process.env.LICENSEKIT_SOAK_PG_URL;
  if (pgUrl) {
    const name = `lk_soak_${randomBytes(4).toString("hex")}`;
    const adminClient = new pg.Client({ connectionString: pgUrl });
    await adminClient.connect();
    await adminClient.query(`CREATE DATABASE ${name}`);
    const url = new URL(pgUrl);
    url.pathname = `/${name}`;
    const pgDir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-soak-pg-"));
    try {
      ok = (await soak("postgres", url.toString(), pgDir)) && ok;
    } finally {
      await adminClient.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await adminClient.end();
      fs.rmSync(pgDir, { recursive: true, force: true });
    }
  } else {
    console.log("\n(PostgreSQL skipped: set LICENSEKIT_SOAK_PG_URL to an admin connection URL to soak it too)");
  }
  await sleep(0);
  process.exit(ok ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
