// Applies the migration set. Safe to run from several processes at once on PostgreSQL
// (Kysely takes an advisory lock); on SQLite the file lock serializes it.
import { Migrator } from "kysely";
import type { Store } from "./db.js";
import { migrationsFor } from "./migrations/index.js";

export async function migrateToLatest(store: Store): Promise<string[]> {
  const migrator = new Migrator({
    db: store.db,
    provider: { getMigrations: async () => migrationsFor(store.engine) },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
