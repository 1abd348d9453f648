// Seeds a fresh, migrated LicenseKit database for the benchmark, directly through the server's own
// store (Kysely over the same DatabaseConfig) and credential hasher, so the keys are known here:
//  - one product, one feature `bench.units`, one "spread" policy (max_activations 50,
//    max_floating_users 1, offline allowed) and one "hot" policy (max_activations 10,000,000);
//  - `count` licenses on the spread policy, each with one bound device `fp-<i>` and the feature
//    assigned with a quota of 10^12; the first `leases` of them also hold a floating lease whose
//    token is known (for heartbeat);
//  - one hot license on the hot policy, also with device `fp-hot` and the feature.
import { CredentialHasher } from "../packages/server/src/crypto/credential-hash.js";
import { newId, newLeaseToken, newLicenseKey } from "../packages/server/src/ids.js";
import { openStore } from "../packages/server/src/store/db.js";
import type { DatabaseConfig } from "../packages/server/src/config.js";

export interface SeededLicense {
  key: string;
  id: string;
  deviceId: string;
  fingerprint: string;
  leaseToken?: string;
}

export interface Seeded {
  licenses: SeededLicense[];
  hot: SeededLicense;
  featureCode: string;
  expiresAt: number;
  seedMs: number;
}

const YEAR_MS = 365 * 24 * 3600 * 1000;
const BATCH = 400;

export async function seed(database: DatabaseConfig, masterKey: Buffer, count: number, leases: number, log: (s: string) => void): Promise<Seeded> {
  const started = Date.now();
  const hasher = new CredentialHasher(masterKey);
  const store = await openStore(database);
  const db = store.db;
  const now = Date.now();
  const expiresAt = now + 5 * YEAR_MS;
  const productId = newId("prod", now);
  const featureId = newId("feat", now);
  const featureCode = "bench.units";
  const policyRow = (id: string, code: string, maxActivations: number) => ({
    id,
    product_id: productId,
    name: code,
    code,
    license_type: "subscription",
    max_activations: maxActivations,
    max_floating_users: 1,
    max_container_instances: 0,
    floating_timeout_minutes: 525_600,
    grace_period_days: 7,
    validation_interval_minutes: 1440,
    require_heartbeat: 0,
    allow_offline_activation: 1,
    offline_grace_days: 7,
    allow_vm: 1,
    allow_container: 1,
    max_transfers: 0,
    duration_days: null,
    metadata: "{}",
    created_at: now,
    updated_at: now,
  });
  const spreadPolicy = newId("pol", now);
  const hotPolicy = newId("pol", now);
  await db.insertInto("products").values({ id: productId, name: "Bench", code: "bench", metadata: "{}", created_at: now, updated_at: now }).execute();
  await db.insertInto("policies").values([policyRow(spreadPolicy, "spread", 50), policyRow(hotPolicy, "hot", 10_000_000)]).execute();
  await db.insertInto("features").values({ id: featureId, product_id: productId, code: featureCode, name: "Units", metadata: "{}", created_at: now, updated_at: now }).execute();

  const make = (i: number | "hot"): SeededLicense => ({
    key: newLicenseKey(),
    id: newId("lic", now),
    deviceId: newId("dev", now),
    fingerprint: `fp-${i}`,
  });
  const licenses: SeededLicense[] = [];
  for (let i = 0; i < count; i++) licenses.push(make(i));
  for (let i = 0; i < Math.min(leases, count); i++) licenses[i]!.leaseToken = newLeaseToken();
  const hot = make("hot");

  const insertChunk = async (chunk: SeededLicense[], policyId: string) => {
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto("licenses")
        .values(
          chunk.map((l) => ({
            id: l.id,
            product_id: productId,
            policy_id: policyId,
            customer_id: null,
            order_id: null,
            subscription_id: null,
            key_hash: hasher.hash(l.key),
            key_prefix: l.key.slice(0, 8),
            key_last4: l.key.slice(-4),
            state: "active" as const,
            customer_email: null,
            customer_name: null,
            active_device_count: 1,
            times_activated: 1,
            times_transferred: 0,
            total_consumptions: 0,
            entitlement_version: 1,
            starts_at: now,
            expires_at: expiresAt,
            maintenance_expires_at: null,
            metadata: "{}",
            created_at: now,
            updated_at: now,
          })),
        )
        .execute();
      await trx
        .insertInto("devices")
        .values(
          chunk.map((l) => ({
            id: l.deviceId,
            license_id: l.id,
            binding_kind: "hardware" as const,
            binding_key: `hw:${l.fingerprint}`,
            fingerprint: l.fingerprint,
            hostname: "bench-host",
            os: "linux",
            ip_address: "127.0.0.1",
            is_vm: 0,
            is_container: 0,
            container_id: null,
            cluster_id: null,
            namespace: null,
            pod_name: null,
            status: "active" as const,
            first_seen_at: now,
            last_seen_at: now,
            last_validated_at: now,
            metadata: "{}",
            created_at: now,
            updated_at: now,
          })),
        )
        .execute();
      await trx
        .insertInto("license_features")
        .values(
          chunk.map((l) => ({
            license_id: l.id,
            feature_id: featureId,
            enabled: 1,
            max_consumptions: 1_000_000_000_000,
            total_consumptions: 0,
            expires_at: null,
            metadata: "{}",
            created_at: now,
            updated_at: now,
          })),
        )
        .execute();
      const withLease = chunk.filter((l) => l.leaseToken);
      if (withLease.length > 0) {
        await trx
          .insertInto("floating_leases")
          .values(
            withLease.map((l) => ({
              id: newId("lse", now),
              license_id: l.id,
              device_id: l.deviceId,
              token_hash: hasher.hash(l.leaseToken!),
              status: "active" as const,
              expires_at: now + YEAR_MS,
              last_heartbeat_at: null,
              ended_at: null,
              created_at: now,
              updated_at: now,
            })),
          )
          .execute();
      }
    });
  };

  try {
    for (let i = 0; i < licenses.length; i += BATCH) {
      await insertChunk(licenses.slice(i, i + BATCH), spreadPolicy);
      if (i > 0 && i % 100_000 === 0) log(`  seeded ${i.toLocaleString("en")} licenses (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    await insertChunk([hot], hotPolicy);
  } finally {
    await store.close();
  }
  return { licenses, hot, featureCode, expiresAt, seedMs: Date.now() - started };
}
