// Everything a running server holds, created in start-up order: database (migrated), master key
// (checked against the database), signing keys, bootstrap admin key, metrics, batched side effects.
import { type BootstrapResult, bootstrapAdminKey } from "./bootstrap.js";
import { RuntimeCache } from "./cache/runtime-cache.js";
import { type Clock, systemClock } from "./clock.js";
import type { Config } from "./config.js";
import { CredentialHasher } from "./crypto/credential-hash.js";
import { deriveKey, loadOrCreateMasterKey, masterKeyCheck, masterKeyMatches } from "./crypto/master-key.js";
import { Keyring } from "./crypto/signing-keys.js";
import { InFlightKeys } from "./http/idempotency.js";
import { RuntimeInvalidation } from "./jobs/runtime-invalidation.js";
import { SideEffects } from "./jobs/side-effects.js";
import { WebhookDeliveryWorker } from "./jobs/webhook-delivery.js";
import { createMetrics, type Metrics } from "./observability/metrics.js";
import { RequestStats } from "./observability/request-stats.js";
import { openStore, type Store } from "./store/db.js";
import { migrateToLatest } from "./store/migrator.js";

export interface Services {
  config: Config;
  clock: Clock;
  store: Store;
  keyring: Keyring;
  hasher: CredentialHasher;
  metrics: Metrics;
  sideEffects: SideEffects;
  /** Per-minute request counts for the operations view, flushed to ops_request_minutes. */
  requestStats: RequestStats;
  /** Seals idempotent response bodies at rest (they may hold a key shown once). */
  idempotencySealKey: Buffer;
  /** Idempotency-Keys of the requests this process is answering (IDEMPOTENCY_IN_PROGRESS). */
  inFlightKeys: InFlightKeys;
  /** Seals webhook endpoint secrets at rest (they must be recoverable to sign deliveries). */
  webhookSecretKey: Buffer;
  /** Sends the webhook outbox (D6); started by startBackgroundWork, stopped when the app closes. */
  webhookDelivery: WebhookDeliveryWorker;
  /** validate/check state in memory; served only while runtimeInvalidation is live. */
  runtimeCache: RuntimeCache;
  /** Keeps runtimeCache in step with the database (started by startBackgroundWork). */
  runtimeInvalidation: RuntimeInvalidation;
}

export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/** Opens the database and applies migrations; used by `serve`, `migrate` and `keys rotate`. */
export async function openMigratedStore(config: Config): Promise<Store> {
  const store = await openStore(config.database);
  try {
    await migrateToLatest(store);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

/** Loads the master key and proves it is the one this database was set up with. */
export async function checkedMasterKey(config: Config, store: Store, clock: Clock): Promise<Buffer> {
  const { key, source } = loadOrCreateMasterKey(config.masterKey, config.dataDir);
  const stored = await store.db.selectFrom("settings").select("value").where("key", "=", "master_key_check").executeTakeFirst();
  if (!stored) {
    const now = clock.now();
    await store.db
      .insertInto("settings")
      .values({ key: "master_key_check", value: masterKeyCheck(key), updated_at: now })
      .onConflict((oc) => oc.column("key").doNothing())
      .execute();
    const again = await store.db.selectFrom("settings").select("value").where("key", "=", "master_key_check").executeTakeFirstOrThrow();
    if (!masterKeyMatches(key, again.value)) throw new StartupError(`master key from ${source} does not match this database`);
  } else if (!masterKeyMatches(key, stored.value)) {
    throw new StartupError(
      `master key from ${source} does not match the key this database was created with; set LICENSEKIT_MASTER_KEY (or LICENSEKIT_DATA_DIR) to the original`,
    );
  }
  return key;
}

export async function createServices(
  config: Config,
  opts: { clock?: Clock; store?: Store } = {},
): Promise<{ services: Services; bootstrap: BootstrapResult }> {
  const clock = opts.clock ?? systemClock;
  const store = opts.store ?? (await openMigratedStore(config));
  try {
    const master = await checkedMasterKey(config, store, clock);
    const hasher = new CredentialHasher(master);
    const keyring = new Keyring(store, master, clock);
    await keyring.ensureActiveKey();
    const bootstrap = await bootstrapAdminKey(store, hasher, clock, config.bootstrapToken);
    const runtimeCache = new RuntimeCache(config.runtimeCache.size, config.runtimeCache.budgetBytes);
    const metrics = createMetrics({ store, clock, runtimeCache });
    keyring.observeSigning((seconds) => metrics.signingDuration.observe(seconds));
    const requestStats = new RequestStats(store, clock);
    const sideEffects = new SideEffects(store, (result) => metrics.sideEffectFlushes.inc({ result }));
    const idempotencySealKey = deriveKey(master, "idempotency-body");
    const webhookSecretKey = deriveKey(master, "webhook-secret");
    const webhookDelivery = new WebhookDeliveryWorker({
      store,
      clock,
      config: config.webhookDelivery,
      allowPrivate: config.webhookAllowPrivate,
      secretKey: webhookSecretKey,
      metrics,
    });
    const runtimeInvalidation = new RuntimeInvalidation(runtimeCache, store, config.database, { pollMs: config.runtimeCache.pollMs });
    return {
      services: {
        config,
        clock,
        store,
        keyring,
        hasher,
        metrics,
        sideEffects,
        requestStats,
        idempotencySealKey,
        inFlightKeys: new InFlightKeys(),
        webhookSecretKey,
        webhookDelivery,
        runtimeCache,
        runtimeInvalidation,
      },
      bootstrap,
    };
  } catch (err) {
    if (!opts.store) await store.close().catch(() => {});
    throw err;
  }
}
