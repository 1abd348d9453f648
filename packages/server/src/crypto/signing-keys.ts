// Ed25519 signing keys (D4): created on first start, private keys sealed under the master key, kid
// derived from the public key, rotation that retires (never deletes) the previous key. The keyring
// caches the active key for the hot path and re-reads it periodically so a rotation done by another
// process (`licensekit keys rotate`) is picked up.
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import type { Clock } from "../clock.js";
import type { Q, Store } from "../store/db.js";
import type { SigningKeyRow } from "../store/schema.js";
import { forUpdate, isUniqueViolation } from "../store/db.js";
import { recordEvent } from "../store/audit-events.js";
import { open, seal } from "./aead.js";
import { deriveKey } from "./master-key.js";

export interface Signature {
  alg: "Ed25519";
  kid: string;
  value: string;
}

export interface PublicKeyView {
  kid: string;
  algorithm: "Ed25519";
  public_key: string;
  status: "active" | "retired";
  created_at: string;
}

export function kidFor(rawPublicKey: Buffer): string {
  return `k_${createHash("sha256").update(rawPublicKey).digest("base64url").slice(0, 16)}`;
}

function newKeyRow(wrapKey: Buffer, now: number): SigningKeyRow {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url");
  const kid = kidFor(raw);
  const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" });
  return {
    kid,
    algorithm: "Ed25519",
    public_key: raw.toString("base64"),
    private_key_enc: seal(wrapKey, pkcs8, kid),
    status: "active",
    created_at: now,
    retired_at: null,
  };
}

export class Keyring {
  readonly #wrapKey: Buffer;
  #active: { kid: string; key: KeyObject } | null = null;
  #timer: NodeJS.Timeout | null = null;
  #onSign: ((seconds: number) => void) | null = null;

  constructor(
    private readonly store: Store,
    master: Buffer,
    private readonly clock: Clock,
  ) {
    this.#wrapKey = deriveKey(master, "signing-key-wrap");
  }

  /** Creates the first key when none is active (safe when several processes start at once). */
  async ensureActiveKey(): Promise<void> {
    const existing = await this.store.db.selectFrom("signing_keys").select("kid").where("status", "=", "active").executeTakeFirst();
    if (!existing) {
      try {
        await this.store.db.insertInto("signing_keys").values(newKeyRow(this.#wrapKey, this.clock.now())).execute();
      } catch (err) {
        if (!isUniqueViolation(err)) throw err; // another process created it
      }
    }
    await this.refresh();
  }

  /** Re-reads the active key from the database. */
  async refresh(): Promise<void> {
    const row = await this.store.db.selectFrom("signing_keys").selectAll().where("status", "=", "active").executeTakeFirst();
    if (!row) throw new Error("no active signing key; run `licensekit keys rotate`");
    if (this.#active?.kid === row.kid) return;
    const der = open(this.#wrapKey, row.private_key_enc, row.kid);
    this.#active = { kid: row.kid, key: createPrivateKey({ key: der, format: "der", type: "pkcs8" }) };
  }

  startRefreshing(intervalMs: number, onError: (err: unknown) => void): void {
    this.stopRefreshing();
    this.#timer = setInterval(() => this.refresh().catch(onError), intervalMs);
    this.#timer.unref();
  }

  stopRefreshing(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  get activeKid(): string {
    if (!this.#active) throw new Error("keyring not loaded");
    return this.#active.kid;
  }

  /** Called with the duration (seconds) of every signature made (licensekit_signing_duration_seconds). */
  observeSigning(fn: (seconds: number) => void): void {
    this.#onSign = fn;
  }

  sign(bytes: string | Buffer): Signature {
    if (!this.#active) throw new Error("keyring not loaded");
    const data = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
    const started = this.#onSign ? process.hrtime.bigint() : 0n;
    const value = sign(null, data, this.#active.key).toString("base64");
    if (this.#onSign) this.#onSign(Number(process.hrtime.bigint() - started) / 1e9);
    return { alg: "Ed25519", kid: this.#active.kid, value };
  }

  /** Makes a new key active and retires the current one, in one transaction. */
  async rotate(actor: { type: "system" | "api_key"; id: string }): Promise<{ kid: string; retired: string | null }> {
    const now = this.clock.now();
    const row = newKeyRow(this.#wrapKey, now);
    const retired = await this.store.db.transaction().execute(async (trx) => {
      const current = await lockActive(this.store, trx);
      if (current) {
        await trx.updateTable("signing_keys").set({ status: "retired", retired_at: now }).where("kid", "=", current.kid).execute();
      }
      await trx.insertInto("signing_keys").values(row).execute();
      await recordEvent(trx, {
        event_type: "signing_key.rotated",
        actor_type: actor.type,
        actor_id: actor.id,
        resource_type: "signing_key",
        resource_id: row.kid,
        metadata: { retired_kid: current?.kid ?? null },
        created_at: now,
      });
      return current?.kid ?? null;
    });
    await this.refresh();
    return { kid: row.kid, retired };
  }
}

function lockActive(store: Store, q: Q): Promise<{ kid: string } | undefined> {
  return forUpdate(store.engine, q.selectFrom("signing_keys").select("kid").where("status", "=", "active")).executeTakeFirst();
}

/** Active and retired keys, read from the database on every call so every process publishes the same list. */
export async function listPublicKeys(q: Q): Promise<PublicKeyView[]> {
  const rows = await q
    .selectFrom("signing_keys")
    .select(["kid", "public_key", "status", "created_at"])
    .orderBy("created_at", "desc")
    .orderBy("kid")
    .execute();
  return rows.map((r) => ({
    kid: r.kid,
    algorithm: "Ed25519",
    public_key: r.public_key,
    status: r.status,
    created_at: new Date(r.created_at).toISOString(),
  }));
}
