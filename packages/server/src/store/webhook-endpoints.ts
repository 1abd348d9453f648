// Webhook endpoints (NOTES §17, D6). The shared secret must be recoverable to sign deliveries, so it
// is stored sealed (AES-256-GCM) under a key derived from the master key, with the endpoint id as
// associated data: a sealed secret copied onto another row does not open.
import { sql } from "kysely";
import { open, seal } from "../crypto/aead.js";
import { newId } from "../ids.js";
import { type Engine, forUpdate, type Q } from "./db.js";
import { iso } from "./json.js";
import { toPage } from "./pagination.js";
import type { WebhookEndpointRow } from "./schema.js";

export interface WebhookEndpointView {
  id: string;
  name: string;
  url: string;
  secret_prefix: string;
  event_types: string[];
  is_active: boolean;
  last_delivery_at?: string;
  created_at: string;
  updated_at: string;
}

export function webhookEndpointView(r: WebhookEndpointRow): WebhookEndpointView {
  return {
    id: r.id,
    name: r.name,
    url: r.url,
    secret_prefix: r.secret_prefix,
    event_types: JSON.parse(r.event_types) as string[],
    is_active: r.is_active === 1,
    ...(r.last_delivery_at !== null ? { last_delivery_at: iso(r.last_delivery_at) } : {}),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

const aad = (endpointId: string) => `webhook_endpoint:${endpointId}`;

export function sealWebhookSecret(key: Buffer, endpointId: string, secret: string): string {
  return seal(key, Buffer.from(secret, "utf8"), aad(endpointId));
}

/** The plaintext secret of an endpoint (for signing deliveries). Throws when the key or row is wrong. */
export function openWebhookSecret(key: Buffer, row: Pick<WebhookEndpointRow, "id" | "secret_enc">): string {
  return open(key, row.secret_enc, aad(row.id)).toString("utf8");
}

/** What the API shows of a secret: at most 10 characters and never more than a quarter of it. */
export function webhookSecretPrefix(secret: string): string {
  return secret.slice(0, Math.min(10, Math.floor(secret.length / 4)));
}

export interface NewWebhookEndpoint {
  name: string;
  url: string;
  eventTypes: string[];
  secret: string;
  isActive: boolean;
}

export async function insertWebhookEndpoint(q: Q, key: Buffer, e: NewWebhookEndpoint, now: number): Promise<WebhookEndpointRow> {
  const id = newId("whk", now);
  const row: WebhookEndpointRow = {
    id,
    name: e.name,
    url: e.url,
    secret_enc: sealWebhookSecret(key, id, e.secret),
    secret_prefix: webhookSecretPrefix(e.secret),
    event_types: JSON.stringify(e.eventTypes),
    is_active: e.isActive ? 1 : 0,
    last_delivery_at: null,
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("webhook_endpoints").values(row).execute();
  return row;
}

export function findWebhookEndpoint(q: Q, id: string): Promise<WebhookEndpointRow | undefined> {
  return q.selectFrom("webhook_endpoints").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Row lock for an endpoint that is about to change or be deleted. */
export function lockWebhookEndpoint(q: Q, engine: Engine, id: string): Promise<WebhookEndpointRow | undefined> {
  return forUpdate(engine, q.selectFrom("webhook_endpoints").selectAll().where("id", "=", id)).executeTakeFirst();
}

/** An arbitrary constant naming the PostgreSQL advisory lock that serialises name+url checks. */
const NAME_URL_LOCK = 7_310_447_001;

/**
 * No unique index backs "one endpoint per name and url", so the check-then-write is serialised: a
 * transaction-scoped advisory lock on PostgreSQL; on SQLite the BEGIN IMMEDIATE transaction already is.
 */
export async function lockWebhookEndpointNames(q: Q, engine: Engine): Promise<void> {
  if (engine === "postgres") await sql`select pg_advisory_xact_lock(${NAME_URL_LOCK})`.execute(q);
}

/** Another endpoint with this exact name and url, if any. */
export function findWebhookEndpointByNameAndUrl(q: Q, name: string, url: string, exceptId?: string): Promise<WebhookEndpointRow | undefined> {
  let qb = q.selectFrom("webhook_endpoints").selectAll().where("name", "=", name).where("url", "=", url);
  if (exceptId) qb = qb.where("id", "<>", exceptId);
  return qb.executeTakeFirst();
}

export async function listWebhookEndpoints(q: Q, limit: number, before: string | null) {
  let qb = q.selectFrom("webhook_endpoints").selectAll().orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

export interface WebhookEndpointPatch {
  name?: string;
  url?: string;
  eventTypes?: string[];
  isActive?: boolean;
  /** A new plaintext secret; sealed here. */
  secret?: string;
}

/** Writes the patch and returns the new row. */
export async function updateWebhookEndpoint(q: Q, key: Buffer, row: WebhookEndpointRow, p: WebhookEndpointPatch, now: number): Promise<WebhookEndpointRow> {
  const next: WebhookEndpointRow = {
    ...row,
    name: p.name ?? row.name,
    url: p.url ?? row.url,
    event_types: p.eventTypes !== undefined ? JSON.stringify(p.eventTypes) : row.event_types,
    is_active: p.isActive === undefined ? row.is_active : p.isActive ? 1 : 0,
    secret_enc: p.secret !== undefined ? sealWebhookSecret(key, row.id, p.secret) : row.secret_enc,
    secret_prefix: p.secret !== undefined ? webhookSecretPrefix(p.secret) : row.secret_prefix,
    updated_at: now,
  };
  await q
    .updateTable("webhook_endpoints")
    .set({
      name: next.name,
      url: next.url,
      event_types: next.event_types,
      is_active: next.is_active,
      secret_enc: next.secret_enc,
      secret_prefix: next.secret_prefix,
      updated_at: now,
    })
    .where("id", "=", row.id)
    .execute();
  return next;
}

export async function deleteWebhookEndpoint(q: Q, id: string): Promise<void> {
  await q.deleteFrom("webhook_endpoints").where("id", "=", id).execute();
}
