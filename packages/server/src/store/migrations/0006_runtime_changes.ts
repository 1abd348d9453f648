// The runtime change feed (issue 8 item 3, issue 9 item 1): every change that can alter a
// validate/check answer appends a row to runtime_changes, written by triggers so that no write
// site can forget it. Each serving process reads the feed (and, on PostgreSQL, LISTENs for
// `licensekit_runtime_changes` notifications sent at commit) to drop what it caches
// (cache/runtime-cache.ts, jobs/runtime-invalidation.ts).
//
// scope 'license' names one license (licenses, devices, license_features); scope 'all' means a
// shared row changed (policies, products, features, product_versions) and every cached license is
// dropped. Pure bookkeeping that never changes a runtime answer does not fire: the batched flush
// (jobs/side-effects.ts) sets only devices.last_seen_at, ip_address and last_validated_at, so the
// device trigger fires on UPDATE OF every other column. A column added to devices later must be
// added to DEVICE_RUNTIME_COLUMNS when the runtime answer can depend on it.
import { type Kysely, sql } from "kysely";
import type { Engine } from "../db.js";

/** devices columns whose change can alter a runtime answer: all but the batched stamps. */
export const DEVICE_RUNTIME_COLUMNS = [
  "id",
  "license_id",
  "binding_kind",
  "binding_key",
  "fingerprint",
  "hostname",
  "os",
  "is_vm",
  "is_container",
  "container_id",
  "cluster_id",
  "namespace",
  "pod_name",
  "status",
  "first_seen_at",
  "metadata",
  "created_at",
  "updated_at",
] as const;

/** [table, scope, column naming the license (scope 'license' only), columns for UPDATE OF (all when absent)]. */
const WATCHED: [string, "license" | "all", string | null, readonly string[] | null][] = [
  ["licenses", "license", "id", null],
  ["devices", "license", "license_id", DEVICE_RUNTIME_COLUMNS],
  ["license_features", "license", "license_id", null],
  ["policies", "all", null, null],
  ["products", "all", null, null],
  ["features", "all", null, null],
  ["product_versions", "all", null, null],
];

export async function up(db: Kysely<unknown>, engine: Engine): Promise<void> {
  await db.schema
    .createTable("runtime_changes")
    .addColumn("seq", engine === "postgres" ? "bigserial" : "integer", (c) => (engine === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn("scope", "text", (c) => c.notNull())
    .addColumn("license_id", "text")
    // epoch ms of the database's clock when the row changed (not the commit): the PostgreSQL poll
    // re-reads a short window by it, and the purge drops rows older than an hour.
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("runtime_changes_created").on("runtime_changes").column("created_at").execute();

  if (engine === "postgres") await postgresTriggers(db);
  else await sqliteTriggers(db);
}

async function postgresTriggers(db: Kysely<unknown>): Promise<void> {
  // TG_ARGV[0]: 'all', or the column that names the license. clock_timestamp() is the time of the
  // change itself (now() would be the transaction's start). pg_notify is delivered at commit, and
  // identical payloads within one transaction are delivered once.
  await sql
    .raw(`
CREATE FUNCTION licensekit_runtime_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  at bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
  old_id text;
  new_id text;
BEGIN
  IF TG_ARGV[0] = 'all' THEN
    INSERT INTO runtime_changes (scope, license_id, created_at) VALUES ('all', NULL, at);
    PERFORM pg_notify('licensekit_runtime_changes', '*');
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN old_id := to_jsonb(OLD) ->> TG_ARGV[0]; END IF;
  IF TG_OP <> 'DELETE' THEN new_id := to_jsonb(NEW) ->> TG_ARGV[0]; END IF;
  IF new_id IS NOT NULL THEN
    INSERT INTO runtime_changes (scope, license_id, created_at) VALUES ('license', new_id, at);
    PERFORM pg_notify('licensekit_runtime_changes', new_id);
  END IF;
  IF old_id IS NOT NULL AND old_id IS DISTINCT FROM new_id THEN
    INSERT INTO runtime_changes (scope, license_id, created_at) VALUES ('license', old_id, at);
    PERFORM pg_notify('licensekit_runtime_changes', old_id);
  END IF;
  RETURN NULL;
END
$fn$`)
    .execute(db);
  for (const [table, scope, column, updateOf] of WATCHED) {
    const update = updateOf ? `UPDATE OF ${updateOf.join(", ")}` : "UPDATE";
    const arg = scope === "all" ? "all" : column;
    await sql
      .raw(
        `CREATE TRIGGER ${table}_runtime_change AFTER INSERT OR ${update} OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION licensekit_runtime_change('${arg}')`,
      )
      .execute(db);
  }
}

async function sqliteTriggers(db: Kysely<unknown>): Promise<void> {
  const at = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";
  const row = (scope: string, license: string) => `INSERT INTO runtime_changes (scope, license_id, created_at) VALUES ('${scope}', ${license}, ${at});`;
  for (const [table, scope, column, updateOf] of WATCHED) {
    const update = updateOf ? `UPDATE OF ${updateOf.join(", ")}` : "UPDATE";
    if (scope === "all") {
      for (const [name, event] of [
        ["ins", "INSERT"],
        ["upd", update],
        ["del", "DELETE"],
      ] as const) {
        await sql.raw(`CREATE TRIGGER ${table}_runtime_change_${name} AFTER ${event} ON ${table} BEGIN ${row("all", "NULL")} END`).execute(db);
      }
      continue;
    }
    await sql.raw(`CREATE TRIGGER ${table}_runtime_change_ins AFTER INSERT ON ${table} BEGIN ${row("license", `NEW.${column}`)} END`).execute(db);
    await sql
      .raw(
        `CREATE TRIGGER ${table}_runtime_change_upd AFTER ${update} ON ${table} BEGIN ${row("license", `NEW.${column}`)} ` +
          `INSERT INTO runtime_changes (scope, license_id, created_at) SELECT 'license', OLD.${column}, ${at} WHERE OLD.${column} IS NOT NEW.${column}; END`,
      )
      .execute(db);
    await sql.raw(`CREATE TRIGGER ${table}_runtime_change_del AFTER DELETE ON ${table} BEGIN ${row("license", `OLD.${column}`)} END`).execute(db);
  }
}
