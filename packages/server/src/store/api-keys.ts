// API keys (management tokens). Only the keyed hash of a token is stored.
import type { CredentialHasher } from "../crypto/credential-hash.js";
import { newId } from "../ids.js";
import { type Engine, forUpdate, type Q } from "./db.js";
import { iso } from "./json.js";
import { toPage } from "./pagination.js";
import type { ApiKeyRow } from "./schema.js";

export function tokenPrefix(token: string): string {
  return token.slice(0, 12);
}

export interface NewApiKey {
  name: string;
  /** The plaintext token; only its keyed hash and display prefix are stored. */
  token: string;
  scopes: string[];
  allowedCidrs?: string[];
  expiresAt?: number | null;
  isActive?: boolean;
}

export async function insertApiKey(q: Q, hasher: CredentialHasher, k: NewApiKey, now: number): Promise<ApiKeyRow> {
  const row: ApiKeyRow = {
    id: newId("key", now),
    name: k.name,
    key_prefix: tokenPrefix(k.token),
    token_hash: hasher.hash(k.token),
    scopes: JSON.stringify(k.scopes),
    allowed_cidrs: JSON.stringify(k.allowedCidrs ?? []),
    is_active: k.isActive === false ? 0 : 1,
    expires_at: k.expiresAt ?? null,
    last_used_at: null,
    revoked_at: null,
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("api_keys").values(row).execute();
  return row;
}

export function findApiKeyByHash(q: Q, hash: string): Promise<ApiKeyRow | undefined> {
  return q.selectFrom("api_keys").selectAll().where("token_hash", "=", hash).executeTakeFirst();
}

/** The APIKey wire shape: never the token or its hash. */
export interface ApiKeyView {
  id: string;
  name: string;
  key_prefix: string;
  scopes: string[];
  allowed_cidrs: string[];
  /** False once the key is deactivated or revoked. */
  is_active: boolean;
  expires_at?: string;
  last_used_at?: string;
  revoked_at?: string;
  created_at: string;
}

export function apiKeyView(r: ApiKeyRow): ApiKeyView {
  return {
    id: r.id,
    name: r.name,
    key_prefix: r.key_prefix,
    scopes: JSON.parse(r.scopes) as string[],
    allowed_cidrs: JSON.parse(r.allowed_cidrs) as string[],
    is_active: r.is_active === 1 && r.revoked_at === null,
    ...(r.expires_at !== null ? { expires_at: iso(r.expires_at) } : {}),
    ...(r.last_used_at !== null ? { last_used_at: iso(r.last_used_at) } : {}),
    ...(r.revoked_at !== null ? { revoked_at: iso(r.revoked_at) } : {}),
    created_at: iso(r.created_at),
  };
}

/** Newest first, revoked keys included (they show `is_active: false` and `revoked_at`). */
export async function listApiKeys(q: Q, limit: number, before: string | null) {
  let qb = q.selectFrom("api_keys").selectAll().orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

/** Row lock for a key that is about to be revoked or rotated. */
export function lockApiKey(q: Q, engine: Engine, id: string): Promise<ApiKeyRow | undefined> {
  return forUpdate(engine, q.selectFrom("api_keys").selectAll().where("id", "=", id)).executeTakeFirst();
}

/** Marks the key revoked; authentication refuses it from the next request on. */
export async function revokeApiKey(q: Q, row: ApiKeyRow, now: number): Promise<ApiKeyRow> {
  await q.updateTable("api_keys").set({ revoked_at: now, updated_at: now }).where("id", "=", row.id).execute();
  return { ...row, revoked_at: now, updated_at: now };
}

/** Replaces the key's token (only its keyed hash and display prefix are stored); the old one stops working at once. */
export async function rotateApiKeyToken(q: Q, hasher: CredentialHasher, row: ApiKeyRow, token: string, now: number): Promise<ApiKeyRow> {
  const next = { ...row, key_prefix: tokenPrefix(token), token_hash: hasher.hash(token), updated_at: now };
  await q
    .updateTable("api_keys")
    .set({ key_prefix: next.key_prefix, token_hash: next.token_hash, updated_at: now })
    .where("id", "=", row.id)
    .execute();
  return next;
}
