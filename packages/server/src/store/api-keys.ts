// API keys (management tokens). Only the keyed hash of a token is stored.
import type { Q } from "./db.js";
import type { ApiKeyRow } from "./schema.js";

export interface ApiKeyView {
  id: string;
  name: string;
  key_prefix: string;
  scopes: string[];
  allowed_cidrs: string[];
  is_active: boolean;
  expires_at?: string;
  last_used_at?: string;
  created_at: string;
}

export function apiKeyView(r: ApiKeyRow): ApiKeyView {
  const v: ApiKeyView = {
    id: r.id,
    name: r.name,
    key_prefix: r.key_prefix,
    scopes: JSON.parse(r.scopes),
    allowed_cidrs: JSON.parse(r.allowed_cidrs),
    is_active: r.is_active === 1,
    created_at: new Date(r.created_at).toISOString(),
  };
  if (r.expires_at !== null) v.expires_at = new Date(r.expires_at).toISOString();
  if (r.last_used_at !== null) v.last_used_at = new Date(r.last_used_at).toISOString();
  return v;
}

export function tokenPrefix(token: string): string {
  return token.slice(0, 12);
}

export async function insertApiKey(q: Q, row: ApiKeyRow): Promise<void> {
  await q.insertInto("api_keys").values(row).execute();
}

export function findApiKeyByHash(q: Q, hash: string): Promise<ApiKeyRow | undefined> {
  return q.selectFrom("api_keys").selectAll().where("token_hash", "=", hash).executeTakeFirst();
}
