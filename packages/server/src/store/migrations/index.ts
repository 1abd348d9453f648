// The ordered migration set, applied at start and by `licensekit migrate`. Append only: never edit a
// migration that has shipped; add the next one.
import type { Kysely, Migration } from "kysely";
import type { Engine } from "../db.js";
import * as m0001 from "./0001_initial.js";
import * as m0002 from "./0002_management.js";
import * as m0003 from "./0003_runtime.js";
import * as m0004 from "./0004_runtime_counters.js";
import * as m0005 from "./0005_webhooks_reporting.js";
import * as m0006 from "./0006_runtime_changes.js";
import * as m0007 from "./0007_sqlite_write_indexes.js";

type EngineMigration = { up(db: Kysely<unknown>, engine: Engine): Promise<void> };

const ORDERED: [string, EngineMigration][] = [
  ["0001_initial", m0001],
  ["0002_management", m0002],
  ["0003_runtime", m0003],
  ["0004_runtime_counters", m0004],
  ["0005_webhooks_reporting", m0005],
  ["0006_runtime_changes", m0006],
  ["0007_sqlite_write_indexes", m0007],
];

export function migrationsFor(engine: Engine): Record<string, Migration> {
  const out: Record<string, Migration> = {};
  for (const [name, m] of ORDERED) out[name] = { up: (db) => m.up(db, engine) };
  return out;
}
