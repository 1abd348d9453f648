// API keys (management tokens). Only the keyed hash of a token is stored.
import type { CredentialHasher } from "../crypto/credential-hash.js";
import { newId } from "../ids.js";
import type { Q } from "./db.js";
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
