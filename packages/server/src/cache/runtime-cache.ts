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
//   runtime_changes feed / NOTIFY within one second, and this process's own writes right away. A
//   changed license's entry goes stale: it still authenticates its key, but validate and check
//   load the license again (invalidateLicense).
// - Generations: a miss notes the current epoch before it reads; the result is stored only if no
//   invalidation of that license (or of everything) happened since, so a read that raced a change
//   can never put old state back.
//
// Size: at most `capacity` licenses and at most `budgetBytes` of estimated heap (rowBytes: the
// rows' fields and strings as V8 lays them out, calibrated in docs/benchmarks.md), entries not hit
// since the last eviction pass dropped first. Strings that repeat across licenses (product, policy,
// state, metadata, device status, feature code) are stored once, and a device is kept as its id and
// status only, so a license with one device and one feature takes about 1 KB and the default
// budget (half the V8 heap limit) holds about two million of them on a 4 GiB heap.
//
// Rows handed out are frozen and shared by concurrent requests; callers must not change them.
// Unknown license keys are not cached (a new license must work at once, and its key hash is not
// known to the change feed).
import type { FastifyRequest } from "fastify";
import "../http/fastify-types.js";
import type { FeatureAssignment } from "../domain/entitlement.js";
import type { VersionCatalogFacts } from "../domain/version-eligibility.js";
import type { Q } from "../store/db.js";
import { findDeviceByBinding } from "../store/devices.js";
import { listFeatureAssignments } from "../store/license-features.js";
import { findLicenseByKeyHash } from "../store/licenses.js";
import { policyOf } from "../store/policies.js";
import { findVersionCatalogFacts } from "../store/product-versions.js";
import { findRuntimeState, RUNTIME_DEVICES_MAX, type RuntimeDeviceFacts } from "../store/runtime-state.js";
import type { DeviceRow, LicenseRow, PolicyRow } from "../store/schema.js";
import { rowMaker } from "../store/sqlite-driver.js";

/**
 * Devices remembered per license (found and "not found"); past this the license's map starts over.
 * The same bound as a miss loads at most, so a license loaded with all its devices never starts over.
 */
const DEVICES_PER_LICENSE = RUNTIME_DEVICES_MAX;
/** A full cache is cut back to this share of its capacity at once (see #evict). */
const EVICT_TO = 0.95;
/** Products whose catalogue is larger than this are judged by a query each time instead. */
const CATALOGUE_MAX = 10_000;

export interface RuntimeLicense {
  license: LicenseRow;
  policy: PolicyRow;
}

/** What validate and check use of a device: its id (for the answer and the batched stamps) and its status (D2). */
export type RuntimeDevice = Pick<DeviceRow, "id" | "status">;

/** One cached license. `features` and devices are loaded on first use. */
export interface CacheEntry extends RuntimeLicense {
  keyHash: string;
  features: readonly FeatureAssignment[] | null;
  /** The first binding key looked up and its device (null: none); most licenses need no more. */
  firstBinding: string | undefined;
  firstDevice: RuntimeDevice | null;
  /** Further binding keys, made when a second one is looked up, and their share of `bytes`. */
  moreDevices: Map<string, RuntimeDevice | null> | null;
  moreBytes: number;
  /** Estimated heap bytes of this entry (ENTRY_BYTES plus rowBytes of what it holds). */
  bytes: number;
  /** Hit since it was stored or last spared by eviction (see #entries). */
  used: boolean;
  /** Every device of the license is in firstDevice/moreDevices (loaded with it): a binding not there has none. */
  devicesComplete: boolean;
  /** The license changed since it was loaded: the entry only authenticates (see invalidateLicense). */
  stale: boolean;
}

// ---- size estimates ---------------------------------------------------------------------------
// What V8 (64-bit, no pointer compression, as Node ships) takes for what the cache holds. A cached
// row is an object literal made for its shape (fastCopy): a 24-byte header and an 8-byte slot per
// field, its hidden class shared with every row of that shape; a string is a 16-byte header plus
// its characters rounded up to 8; a number beyond 31 bits (every timestamp) is a 16-byte heap
// number. Constants calibrated against the heap growth that bench/cache-memory.ts measures
// (docs/benchmarks.md).
const OBJECT_BYTES = 24;
const FIELD_BYTES = 8;
const HEAP_NUMBER_BYTES = 16;
/** An entry object, its slots in the two maps, and what the measured heap growth shows beyond the parts above. */
const ENTRY_BYTES = 280;
const MAP_BYTES = 120;
const MAP_SLOT_BYTES = 40;

function stringBytes(s: string): number {
  return 16 + ((s.length + 7) & ~7);
}

/** Estimated heap bytes of a row (strings already interned count nothing). */
function rowBytes(row: object, interned: ReadonlyMap<string, string>): number {
  let n = OBJECT_BYTES;
  for (const v of Object.values(row)) {
    n += FIELD_BYTES;
    if (typeof v === "string") {
      if (!interned.has(v)) n += stringBytes(v);
    } else if (typeof v === "number" && !(Number.isInteger(v) && v >= -(2 ** 30) && v < 2 ** 30)) n += HEAP_NUMBER_BYTES;
  }
  return n;
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

/**
 * A copy of a database row as an ordinary object with fast properties and, for every row of one
 * shape, the same hidden class, frozen or not. better-sqlite3's own row objects were in V8's
 * dictionary mode (a hash table per row: about twice the memory, and slower to read); the SQLite
 * driver now makes rows itself (`rowMaker`), but the copy keeps the cached entry independent of the
 * driver's row on either engine.
 *
 * The copy is an object literal written for the row's keys (`rowMaker`, one function per shape),
 * not a spread. A spread's copy gets a hidden class of its own outside V8's transition tree:
 * freezing it cannot take a shared transition, so every cached license and feature had a hidden
 * class of its own (and once the spread's site had seen a few shapes, the copies differed even
 * unfrozen). Every property read of a cached license or feature in validate and check then missed
 * V8's megamorphic cache and went through the runtime: eleven such misses per validate, seen with
 * `node --log-ic`, and one map per license in the heap. Object.assign onto `{}` shares classes too,
 * but left the cached policy row in dictionary mode (%HasFastProperties false).
 * test/runtime-cache-shapes.test.ts checks both.
 */
function fastCopy<T extends object>(row: T): T {
  const keys = Object.keys(row);
  const id = keys.join("\u0000");
  let make = makerOfShape.get(id);
  if (make === undefined) {
    if (makerOfShape.size >= SHAPES_MAX) return Object.assign({}, row);
    make = rowMaker(keys);
    makerOfShape.set(id, make);
  }
  // Object.values lists the values in the order of Object.keys.
  return make(Object.values(row)) as T;
}

/** Row shapes are those of a few queries; past this many a copy is made by Object.assign. */
const SHAPES_MAX = 64;
const makerOfShape = new Map<string, ReturnType<typeof rowMaker>>();

/** Fields whose values repeat across licenses and devices: each distinct value is kept once. */
const SHARED_LICENSE_FIELDS = ["product_id", "policy_id", "state", "metadata"] as const;
const SHARED_FEATURE_FIELDS = ["code"] as const;
const SHARED_DEVICE_FIELDS = ["status"] as const;
/** Distinct shared values kept at most; past this new values are simply not shared. */
const INTERN_MAX = 100_000;
/** Shared values longer than this are not worth a lookup. */
const INTERN_LENGTH_MAX = 256;

export class RuntimeCache {
  readonly #capacity: number;
  readonly #budgetBytes: number;
  #bytes = 0;
  /** Shared string values (SHARED_*_FIELDS), by value. */
  readonly #interned = new Map<string, string>();
  /**
   * Oldest first. A hit only marks its entry `used`; eviction gives a used entry a second chance
   * (moves it to the end, unmarked) and drops the first unused ones. Moving every hit to the end
   * instead (delete + set) churned the Map's table: at a million entries it was rebuilt, tens of
   * megabytes, every few tens of thousands of hits.
   */
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

  /**
   * `capacity` licenses and `budgetBytes` of estimated heap at most (whichever binds first); a
   * capacity of 0 disables the cache (every call reads the database).
   */
  constructor(capacity: number, budgetBytes = Number.POSITIVE_INFINITY) {
    this.#capacity = capacity;
    this.#budgetBytes = budgetBytes;
  }

  get capacity(): number {
    return this.#capacity;
  }

  get budgetBytes(): number {
    return this.#budgetBytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Estimated heap bytes of the cached licenses. */
  get bytes(): number {
    return this.#bytes;
  }

  #intern<T extends object>(row: T, fields: readonly string[]): T {
    const r = row as Record<string, unknown>;
    for (const f of fields) {
      const v = r[f];
      if (typeof v !== "string" || v.length > INTERN_LENGTH_MAX) continue;
      const shared = this.#interned.get(v);
      if (shared !== undefined) r[f] = shared;
      else if (this.#interned.size < INTERN_MAX) this.#interned.set(v, v);
    }
    return row;
  }

  /** Whether `entry` is the one the cache holds (a request may still use one dropped meanwhile). */
  #held(entry: CacheEntry): boolean {
    return this.#entries.get(entry.keyHash) === entry;
  }

  #grow(entry: CacheEntry, bytes: number): void {
    entry.bytes += bytes;
    this.#bytes += bytes;
    if (this.#bytes > this.#budgetBytes) this.#evict();
  }

  #drop(key: string, entry: CacheEntry): void {
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    if (this.#keyOfLicense.get(entry.license.id) === key) this.#keyOfLicense.delete(entry.license.id);
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

  /**
   * One license changed (its key hash is looked up by id). Validate and check must read it again,
   * but its key still names the same license: a key hash is set once and licenses are never
   * deleted. So the entry is replaced by a stale one, holding only the license and policy rows as
   * they were: it authenticates the other runtime routes, which use only the license id and read
   * what they decide on under the license lock, and the next validate or check loads the license
   * afresh in its place. A license written to again and again (consumes) is thus read once per
   * validate, not once per write.
   */
  invalidateLicense(licenseId: string): void {
    this.#epoch++;
    this.stats.invalidations++;
    if (this.#loading > 0) this.#invalidatedAt.set(licenseId, this.#epoch);
    const key = this.#keyOfLicense.get(licenseId);
    if (key === undefined) return;
    const entry = this.#entries.get(key);
    if (!entry) {
      this.#keyOfLicense.delete(licenseId);
      return;
    }
    if (entry.stale) return;
    // a new object: requests still holding the old entry keep their snapshot, and what they load
    // into it is not stored (#held)
    const stale = newEntry(entry.keyHash, entry.license, entry.policy);
    stale.stale = true;
    stale.used = entry.used;
    stale.bytes = this.#licenseBytes(stale);
    this.#bytes += stale.bytes - entry.bytes;
    // the same key keeps its place in the eviction order
    this.#entries.set(key, stale);
  }

  /** Drops everything: a shared row changed, or the feed may have missed changes. */
  invalidateAll(): void {
    this.#epoch++;
    this.#clearedAt = this.#epoch;
    this.stats.clears++;
    this.#entries.clear();
    this.#bytes = 0;
    this.#interned.clear();
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
   * (policy by id unless cached) and remembered. `withState` (validate, check): the miss also loads
   * the license's features and devices, in the same one statement (store/runtime-state.ts).
   */
  async license(q: Q, keyHash: string, opts: { withState?: boolean } = {}): Promise<CacheEntry | undefined> {
    if (!this.usable()) {
      const found = await readLicense(q, keyHash);
      return found ? newEntry(found.license.key_hash, found.license, found.policy) : undefined;
    }
    const hit = this.#entries.get(keyHash);
    // a stale entry authenticates; validate and check (withState) load the license again
    if (hit && !(hit.stale && opts.withState)) {
      this.stats.hits++;
      if (!hit.used) hit.used = true;
      return hit;
    }
    this.stats.misses++;
    const token = this.#begin();
    try {
      // validate/check: the license with its features and devices in one statement; other runtime
      // routes only authenticate through the cache, so they read the license alone
      const state = opts.withState ? await findRuntimeState(q, keyHash) : undefined;
      const row = opts.withState ? state?.license : await findLicenseByKeyHash(q, keyHash);
      if (!row) return undefined;
      const policy = this.#policies.get(row.policy_id) ?? (await policyOf(q, row));
      if (!this.#mayStore(token, row.id)) return newEntry(row.key_hash, row, policy);
      // the row's own key_hash (equal to keyHash) is kept, not the request's copy
      const license = this.#intern(fastCopy(row), SHARED_LICENSE_FIELDS);
      const entry = newEntry(license.key_hash, license, Object.isFrozen(policy) ? policy : fastCopy(policy));
      this.#policies.set(entry.policy.id, entry.policy);
      this.#store(entry);
      if (state) {
        this.#setFeatures(entry, state.features);
        for (const device of state.devices ?? []) if (this.#held(entry)) this.#addDevice(entry, device.binding_key, device);
        entry.devicesComplete = state.devices !== null;
      }
      return entry;
    } finally {
      this.#end();
    }
  }

  /** An entry's bytes with its license row alone (features and devices add theirs as they come). */
  #licenseBytes(entry: CacheEntry): number {
    return ENTRY_BYTES + rowBytes(entry.license, this.#interned);
  }

  #store(entry: CacheEntry): void {
    const old = this.#keyOfLicense.get(entry.license.id);
    const oldEntry = old === undefined ? undefined : this.#entries.get(old);
    if (old !== undefined && oldEntry) this.#drop(old, oldEntry);
    const same = this.#entries.get(entry.keyHash);
    if (same) this.#drop(entry.keyHash, same);
    entry.bytes = this.#licenseBytes(entry);
    this.#bytes += entry.bytes;
    this.#entries.set(entry.keyHash, entry);
    this.#keyOfLicense.set(entry.license.id, entry.keyHash);
    if (this.#entries.size > this.#capacity || this.#bytes > this.#budgetBytes) this.#evict();
  }

  /**
   * Drops entries not used since their last pass (oldest first; see #entries) down to EVICT_TO of
   * the capacity and of the byte budget, in one pass. Evicting one entry per insert would restart a
   * Map iteration from the front every time, and V8 skips the deleted slots there one by one: with a
   * full cache and a stream of new keys that cost grew to tens of microseconds per request
   * (1,000,000 licenses behind a 100,000-entry cache).
   */
  #evict(): void {
    const count = Math.max(1, Math.floor(this.#capacity * EVICT_TO));
    const bytes = this.#budgetBytes * EVICT_TO;
    // Entries moved to the end come round again in this same loop, unmarked: when every entry was
    // used, the pass goes on to drop them oldest first.
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= count && this.#bytes <= bytes) break;
      if (entry.used) {
        entry.used = false;
        this.#entries.delete(key);
        this.#entries.set(key, entry);
      } else this.#drop(key, entry);
    }
  }

  /**
   * What the entry already knows of a binding key's device, without waiting: the device, null (the
   * license has none with that binding), or undefined (not known: `device` reads it).
   */
  knownDevice(entry: CacheEntry, bindingKey: string): RuntimeDevice | null | undefined {
    if (!this.usable() || entry.stale) return undefined;
    const known = entry.firstBinding === bindingKey ? entry.firstDevice : entry.moreDevices?.get(bindingKey);
    if (known !== undefined) return known;
    // every device of the license was loaded with it: this binding has none
    return entry.devicesComplete ? null : undefined;
  }

  /** The license's device for a binding key (undefined: none), remembered in the entry. */
  async device(q: Q, entry: CacheEntry, bindingKey: string): Promise<RuntimeDevice | undefined> {
    const known = this.knownDevice(entry, bindingKey);
    if (known !== undefined) return known ?? undefined;
    if (!this.usable() || entry.stale) return findDeviceByBinding(q, entry.license.id, bindingKey);
    const token = this.#begin();
    try {
      const row = await findDeviceByBinding(q, entry.license.id, bindingKey);
      if (!this.#mayStore(token, entry.license.id) || !this.#held(entry)) return row;
      return this.#addDevice(entry, bindingKey, row) ?? undefined;
    } finally {
      this.#end();
    }
  }

  #addDevice(entry: CacheEntry, bindingKey: string, row: RuntimeDeviceFacts | undefined): RuntimeDevice | null {
    // only what validate/check read is kept: a whole device row is ~700 bytes, this ~100
    const device = row ? freeze(this.#intern({ id: row.id, status: row.status }, SHARED_DEVICE_FIELDS)) : null;
    // the row's own binding_key (equal to bindingKey) is kept, not the request's copy
    const key = row?.binding_key ?? bindingKey;
    const bytes = (device ? rowBytes(device, this.#interned) : 0) + stringBytes(key);
    if (entry.firstBinding === undefined) {
      entry.firstBinding = key;
      entry.firstDevice = device;
      this.#grow(entry, bytes);
      return device;
    }
    let delta = bytes + MAP_SLOT_BYTES;
    if (!entry.moreDevices || entry.moreDevices.size + 1 >= DEVICES_PER_LICENSE) {
      // past DEVICES_PER_LICENSE the extra devices start over, and their bytes leave the estimate
      delta += MAP_BYTES - entry.moreBytes;
      entry.moreDevices = new Map();
      entry.moreBytes = MAP_BYTES;
    }
    entry.moreDevices.set(key, device);
    entry.moreBytes += bytes + MAP_SLOT_BYTES;
    // one #grow, last: it may evict this very entry, which must leave with all its bytes counted
    this.#grow(entry, delta);
    return device;
  }

  /** The entry's feature assignments when it holds them (undefined: `features` reads them). */
  knownFeatures(entry: CacheEntry): readonly FeatureAssignment[] | undefined {
    return this.usable() && !entry.stale ? (entry.features ?? undefined) : undefined;
  }

  /** The license's feature assignments (ordered by code), remembered in the entry. */
  async features(q: Q, entry: CacheEntry): Promise<readonly FeatureAssignment[]> {
    const known = this.knownFeatures(entry);
    if (known) return known;
    if (!this.usable() || entry.stale) return listFeatureAssignments(q, entry.license.id);
    const token = this.#begin();
    try {
      const rows = await listFeatureAssignments(q, entry.license.id);
      if (!this.#mayStore(token, entry.license.id) || !this.#held(entry)) return freeze(rows.map(freeze));
      return this.#setFeatures(entry, rows);
    } finally {
      this.#end();
    }
  }

  #setFeatures(entry: CacheEntry, rows: readonly FeatureAssignment[]): readonly FeatureAssignment[] {
    const frozen = freeze(rows.map((r) => freeze(this.#intern(fastCopy(r), SHARED_FEATURE_FIELDS))));
    entry.features = frozen;
    this.#grow(entry, frozen.reduce((n, r) => n + rowBytes(r, this.#interned), OBJECT_BYTES + 8 * frozen.length));
    return frozen;
  }

  /** Version facts from the product's catalogue when it is cached and small enough to hold (else undefined). */
  knownVersionFacts(productId: string, appVersion: string | undefined): VersionCatalogFacts | undefined {
    if (!this.usable()) return undefined;
    const catalogue = this.#catalogues.get(productId);
    return catalogue ? catalogueFacts(catalogue, appVersion) : undefined;
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
    return catalogueFacts(catalogue, appVersion);
  }
}

function catalogueFacts(catalogue: ReadonlyMap<string, number>, appVersion: string | undefined): VersionCatalogFacts {
  const releasedAt = appVersion === undefined ? undefined : catalogue.get(appVersion);
  return {
    catalogue: catalogue.size > 0,
    release: releasedAt !== undefined && appVersion !== undefined ? { version: appVersion, released_at: releasedAt } : null,
  };
}

/**
 * The cache entry behind an authenticated runtime request (set by runtimeAuth). A field of the
 * request, not a WeakMap beside it: a weak collection costs each request an ephemeron-table entry
 * that the garbage collector must process.
 */
export function runtimeEntryOf(req: FastifyRequest): CacheEntry | undefined {
  return req.runtime?.entry;
}

function newEntry(keyHash: string, license: LicenseRow, policy: PolicyRow): CacheEntry {
  return {
    keyHash,
    license: freeze(license),
    policy: Object.isFrozen(policy) ? policy : freeze(policy),
    features: null,
    firstBinding: undefined,
    firstDevice: null,
    moreDevices: null,
    moreBytes: 0,
    bytes: 0,
    used: false,
    devicesComplete: false,
    stale: false,
  };
}

/** The uncached read (the cache is off or its change feed is not live): license and policy. */
async function readLicense(q: Q, keyHash: string): Promise<RuntimeLicense | undefined> {
  const license = await findLicenseByKeyHash(q, keyHash);
  if (!license) return undefined;
  return { license, policy: await policyOf(q, license) };
}
