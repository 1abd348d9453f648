// The in-process runtime state cache of the validate/check hot path (issue 8 item 3): by license
// key hash → the license row, its policy, its feature assignments and its devices by binding key
// (with "no device" entries), plus policies by id and each product's version catalogue. A hit
// answers validate/check without any database read.
//
// Correctness rests on three rules:
// - Trust: the cache is read only while its invalidation feed is live (`setTrust`, given by
//   jobs/runtime-invalidation.ts): on PostgreSQL while the LISTEN connection is up, on SQLite while
//   the change feed was polled within the last moments. Otherwise every call reads the database
//   and nothing is stored.
// - Invalidation: every change to licenses, devices, license_features (one license) or to
//   policies, products, features, product_versions (everything) reaches every process through the
//   runtime_changes feed / NOTIFY within one second, and this process's own writes right away.
// - Generations: a miss notes the current epoch before it reads; the result is stored only if no
//   invalidation of that license (or of everything) happened since, so a read that raced a change
//   can never put old state back.
//
// Rows handed out are frozen and shared by concurrent requests; callers must not change them.
// Unknown license keys are not cached (a new license must work at once, and its key hash is not
// known to the change feed).
import type { FeatureAssignment } from "../domain/entitlement.js";
import type { VersionCatalogFacts } from "../domain/version-eligibility.js";
import type { Q } from "../store/db.js";
import { findDeviceByBinding } from "../store/devices.js";
import { listFeatureAssignments } from "../store/license-features.js";
import { findLicenseByKeyHash } from "../store/licenses.js";
import { policyOf } from "../store/policies.js";
import { findVersionCatalogFacts } from "../store/product-versions.js";
import type { DeviceRow, LicenseRow, PolicyRow } from "../store/schema.js";

/** Devices remembered per license (found and "not found"); past this the license's map starts over. */
const DEVICES_PER_LICENSE = 64;
/** A full cache is cut back to this share of its capacity at once (see #evict). */
const EVICT_TO = 0.95;
/** Products whose catalogue is larger than this are judged by a query each time instead. */
const CATALOGUE_MAX = 10_000;

export interface RuntimeLicense {
  license: LicenseRow;
  policy: PolicyRow;
}

/** One cached license. `features` is loaded on first use. */
export interface CacheEntry extends RuntimeLicense {
  keyHash: string;
  features: readonly FeatureAssignment[] | null;
  devices: Map<string, DeviceRow | null>;
}

/** A product's catalogue: version → released_at; null when too large to hold. */
type Catalogue = Map<string, number> | null;

export interface RuntimeCacheStats {
  hits: number;
  misses: number;
  invalidations: number;
  clears: number;
}

const freeze = <T extends object>(o: T): T => Object.freeze(o);

export class RuntimeCache {
  readonly #capacity: number;
  /** Insertion order is recency order: a hit moves its entry to the end; the first is evicted. */
  readonly #entries = new Map<string, CacheEntry>();
  readonly #keyOfLicense = new Map<string, string>();
  readonly #policies = new Map<string, PolicyRow>();
  readonly #catalogues = new Map<string, Catalogue>();
  #epoch = 0;
  /** Epoch of the last invalidation of everything. */
  #clearedAt = 0;
  /** Epoch of each license's last invalidation, kept only while some load is in flight. */
  readonly #invalidatedAt = new Map<string, number>();
  #loading = 0;
  #trusted: () => boolean = () => false;
  readonly stats: RuntimeCacheStats = { hits: 0, misses: 0, invalidations: 0, clears: 0 };

  /** `capacity` licenses at most; 0 disables the cache (every call reads the database). */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get capacity(): number {
    return this.#capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Says when the invalidation feed is live; until it is set the cache is never read. */
  setTrust(trusted: () => boolean): void {
    this.#trusted = trusted;
  }

  /** Whether cached state may be served now. */
  usable(): boolean {
    return this.#capacity > 0 && this.#trusted();
  }

  // ---- invalidation -------------------------------------------------------------------------

  /** Drops one license (its key hash is looked up by id). */
  invalidateLicense(licenseId: string): void {
    this.#epoch++;
    this.stats.invalidations++;
    if (this.#loading > 0) this.#invalidatedAt.set(licenseId, this.#epoch);
    const key = this.#keyOfLicense.get(licenseId);
    if (key !== undefined) {
      this.#entries.delete(key);
      this.#keyOfLicense.delete(licenseId);
    }
  }

  /** Drops everything: a shared row changed, or the feed may have missed changes. */
  invalidateAll(): void {
    this.#epoch++;
    this.#clearedAt = this.#epoch;
    this.stats.clears++;
    this.#entries.clear();
    this.#keyOfLicense.clear();
    this.#policies.clear();
    this.#catalogues.clear();
    this.#invalidatedAt.clear();
  }

  #begin(): number {
    this.#loading++;
    return this.#epoch;
  }

  #end(): void {
    this.#loading--;
    if (this.#loading === 0) this.#invalidatedAt.clear();
  }

  /** A load that began at `token` may be stored: nothing it covers was invalidated since. */
  #mayStore(token: number, licenseId: string | null): boolean {
    if (this.#clearedAt > token || !this.usable()) return false;
    return licenseId === null || (this.#invalidatedAt.get(licenseId) ?? -1) <= token;
  }

  // ---- reads --------------------------------------------------------------------------------

  /**
   * The license (and policy) behind a license key hash: from the cache when usable, else read
   * (license by key hash, policy by id unless cached) and remembered.
   */
  async license(q: Q, keyHash: string): Promise<CacheEntry | undefined> {
    if (!this.usable()) {
      const found = await readLicense(q, keyHash, undefined);
      return found ? newEntry(keyHash, found.license, found.policy) : undefined;
    }
    const hit = this.#entries.get(keyHash);
    if (hit) {
      this.stats.hits++;
      this.#entries.delete(keyHash);
      this.#entries.set(keyHash, hit);
      return hit;
    }
    this.stats.misses++;
    const token = this.#begin();
    try {
      const found = await readLicense(q, keyHash, (policyId) => this.#policies.get(policyId));
      if (!found) return undefined;
      const entry = newEntry(keyHash, found.license, found.policy);
      if (this.#mayStore(token, found.license.id)) {
        this.#policies.set(entry.policy.id, entry.policy);
        this.#store(entry);
      }
      return entry;
    } finally {
      this.#end();
    }
  }

  #store(entry: CacheEntry): void {
    const old = this.#keyOfLicense.get(entry.license.id);
    if (old !== undefined && old !== entry.keyHash) this.#entries.delete(old);
    this.#entries.delete(entry.keyHash);
    this.#entries.set(entry.keyHash, entry);
    this.#keyOfLicense.set(entry.license.id, entry.keyHash);
    if (this.#entries.size > this.#capacity) this.#evict();
  }

  /**
   * Drops the least recently used entries down to EVICT_TO of the capacity, in one pass. Evicting
   * one entry per insert would restart a Map iteration from the front every time, and V8 skips the
   * deleted slots there one by one: with a full cache and a stream of new keys that cost grew to
   * tens of microseconds per request (1,000,000 licenses behind a 100,000-entry cache).
   */
  #evict(): void {
    let drop = this.#entries.size - Math.max(1, Math.floor(this.#capacity * EVICT_TO));
    for (const [key, entry] of this.#entries) {
      if (drop-- <= 0) break;
      this.#entries.delete(key);
      if (this.#keyOfLicense.get(entry.license.id) === key) this.#keyOfLicense.delete(entry.license.id);
    }
  }

  /** The license's device for a binding key (undefined: none), remembered in the entry. */
  async device(q: Q, entry: CacheEntry, bindingKey: string): Promise<DeviceRow | undefined> {
    if (!this.usable()) return findDeviceByBinding(q, entry.license.id, bindingKey);
    const known = entry.devices.get(bindingKey);
    if (known !== undefined) return known ?? undefined;
    const token = this.#begin();
    try {
      const row = await findDeviceByBinding(q, entry.license.id, bindingKey);
      if (this.#mayStore(token, entry.license.id)) {
        if (entry.devices.size >= DEVICES_PER_LICENSE) entry.devices.clear();
        entry.devices.set(bindingKey, row ? freeze(row) : null);
      }
      return row;
    } finally {
      this.#end();
    }
  }

  /** The license's feature assignments (ordered by code), remembered in the entry. */
  async features(q: Q, entry: CacheEntry): Promise<readonly FeatureAssignment[]> {
    if (!this.usable()) return listFeatureAssignments(q, entry.license.id);
    if (entry.features) return entry.features;
    const token = this.#begin();
    try {
      const rows = await listFeatureAssignments(q, entry.license.id);
      const frozen = freeze(rows.map(freeze));
      if (this.#mayStore(token, entry.license.id)) entry.features = frozen;
      return frozen;
    } finally {
      this.#end();
    }
  }

  /** What version gating needs about `appVersion` of a product, from its cached catalogue. */
  async versionFacts(q: Q, productId: string, appVersion: string | undefined): Promise<VersionCatalogFacts> {
    if (!this.usable()) return findVersionCatalogFacts(q, productId, appVersion);
    let catalogue = this.#catalogues.get(productId);
    if (catalogue === undefined) {
      const token = this.#begin();
      try {
        const rows = await q
          .selectFrom("product_versions")
          .select(["version", "released_at"])
          .where("product_id", "=", productId)
          .limit(CATALOGUE_MAX + 1)
          .execute();
        catalogue = rows.length > CATALOGUE_MAX ? null : new Map(rows.map((r) => [r.version, r.released_at]));
        if (this.#mayStore(token, null)) this.#catalogues.set(productId, catalogue);
      } finally {
        this.#end();
      }
    }
    if (catalogue === null) return findVersionCatalogFacts(q, productId, appVersion);
    const releasedAt = appVersion === undefined ? undefined : catalogue.get(appVersion);
    return {
      catalogue: catalogue.size > 0,
      release: releasedAt !== undefined && appVersion !== undefined ? { version: appVersion, released_at: releasedAt } : null,
    };
  }
}

/** The cache entry behind each authenticated runtime request (set by runtimeAuth). */
const entryOfRequest = new WeakMap<object, CacheEntry>();

export function rememberRuntimeEntry(req: object, entry: CacheEntry): void {
  entryOfRequest.set(req, entry);
}

export function runtimeEntryOf(req: object): CacheEntry | undefined {
  return entryOfRequest.get(req);
}

function newEntry(keyHash: string, license: LicenseRow, policy: PolicyRow): CacheEntry {
  return { keyHash, license: freeze(license), policy: Object.isFrozen(policy) ? policy : freeze(policy), features: null, devices: new Map() };
}

async function readLicense(q: Q, keyHash: string, cachedPolicy: ((id: string) => PolicyRow | undefined) | undefined): Promise<RuntimeLicense | undefined> {
  const license = await findLicenseByKeyHash(q, keyHash);
  if (!license) return undefined;
  return { license, policy: cachedPolicy?.(license.policy_id) ?? (await policyOf(q, license)) };
}
