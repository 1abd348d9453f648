// First start on an empty database (D9): create one admin API key. Its token is either
// LICENSEKIT_BOOTSTRAP_TOKEN or generated here and printed once by the caller. A settings row marks
// the bootstrap as done, so it happens exactly once even when several processes start together.
import type { Clock } from "./clock.js";
import type { CredentialHasher } from "./crypto/credential-hash.js";
import { newManagementToken } from "./ids.js";
import { recordEvent } from "./store/audit-events.js";
import { findApiKeyByHash, insertApiKey } from "./store/api-keys.js";
import { isUniqueViolation, type Store } from "./store/db.js";

export type BootstrapResult =
  | { outcome: "created"; token: string; generated: boolean; keyId: string }
  | { outcome: "already_done"; configuredTokenKnown: boolean | null };

const MARK = "bootstrap_completed_at";

export async function bootstrapAdminKey(
  store: Store,
  hasher: CredentialHasher,
  clock: Clock,
  configuredToken: string | undefined,
): Promise<BootstrapResult> {
  const done = await store.db.selectFrom("settings").select("value").where("key", "=", MARK).executeTakeFirst();
  if (done) return alreadyDone(store, hasher, configuredToken);
  const token = configuredToken ?? newManagementToken();
  const now = clock.now();
  try {
    const keyId = await store.db.transaction().execute(async (trx) => {
      await trx.insertInto("settings").values({ key: MARK, value: new Date(now).toISOString(), updated_at: now }).execute();
      const key = await insertApiKey(trx, hasher, { name: "bootstrap admin", token, scopes: ["admin"] }, now);
      await recordEvent(trx, {
        event_type: "api_key.created",
        actor_type: "system",
        actor_id: "bootstrap",
        resource_type: "api_key",
        resource_id: key.id,
        metadata: { name: "bootstrap admin", scopes: ["admin"], bootstrap: true },
        created_at: now,
      });
      return key.id;
    });
    return { outcome: "created", token, generated: configuredToken === undefined, keyId };
  } catch (err) {
    if (isUniqueViolation(err)) return alreadyDone(store, hasher, configuredToken); // another process won
    throw err;
  }
}

async function alreadyDone(store: Store, hasher: CredentialHasher, configured: string | undefined): Promise<BootstrapResult> {
  if (!configured) return { outcome: "already_done", configuredTokenKnown: null };
  const row = await findApiKeyByHash(store.db, hasher.hash(configured));
  return { outcome: "already_done", configuredTokenKnown: row !== undefined };
}
