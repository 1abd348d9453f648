// The one read behind a validate/check cache miss (issue 8 item 3): a license by key hash together
// with its feature assignments and, when it has at most RUNTIME_DEVICES_MAX of them, all its devices
// (id, status, binding key), as JSON arrays built by the database in the same statement.
import { PostgresAdapter, sql } from "kysely";
import { jsonArrayFrom as pgJsonArrayFrom } from "kysely/helpers/postgres";
import { jsonArrayFrom as sqliteJsonArrayFrom } from "kysely/helpers/sqlite";
import type { FeatureAssignment } from "../domain/entitlement.js";
import type { Q } from "./db.js";
import { FEATURE_ASSIGNMENT_COLUMNS } from "./license-features.js";
import { prepare } from "./prepared.js";
import type { DeviceRow, LicenseRow } from "./schema.js";

/** Licenses with more devices than this are read without them (a device is then read by its binding key). */
export const RUNTIME_DEVICES_MAX = 64;

export type RuntimeDeviceFacts = Pick<DeviceRow, "id" | "status" | "binding_key">;

export interface RuntimeState {
  license: LicenseRow;
  /** Ordered by feature code, as listFeatureAssignments. */
  features: FeatureAssignment[];
  /** Every device of the license, or null when it has more than RUNTIME_DEVICES_MAX. */
  devices: RuntimeDeviceFacts[] | null;
}

interface StateRow extends LicenseRow {
  state_features: unknown;
  state_devices: unknown;
}

const stateByKeyHash = prepare(1, (q, keyHash: string) => {
  // SQLite answers the arrays as JSON text, PostgreSQL as json (parsed by the driver)
  const jsonArrayFrom = q.getExecutor().adapter instanceof PostgresAdapter ? pgJsonArrayFrom : sqliteJsonArrayFrom;
  return q
    .selectFrom("licenses")
    .selectAll("licenses")
    .select((eb) => [
      jsonArrayFrom(
        eb
          .selectFrom("license_features")
          .innerJoin("features", "features.id", "license_features.feature_id")
          .select(FEATURE_ASSIGNMENT_COLUMNS)
          .whereRef("license_features.license_id", "=", "licenses.id")
          .orderBy("features.code"),
      ).as("state_features"),
      jsonArrayFrom(
        eb
          .selectFrom("devices")
          .select(["devices.id as id", "devices.status as status", "devices.binding_key as binding_key"])
          .whereRef("devices.license_id", "=", "licenses.id")
          .limit(sql.lit(RUNTIME_DEVICES_MAX + 1)),
      ).as("state_devices"),
    ])
    .where("licenses.key_hash", "=", keyHash);
});

function jsonArray<T>(value: unknown): T[] {
  const parsed = typeof value === "string" ? JSON.parse(value) : value;
  if (!Array.isArray(parsed)) throw new Error("runtime state: expected a JSON array from the database");
  return parsed as T[];
}

/** The license behind a key hash with its features and (up to RUNTIME_DEVICES_MAX) devices, in one statement. */
export async function findRuntimeState(q: Q, keyHash: string): Promise<RuntimeState | undefined> {
  const row = (await stateByKeyHash.first(q, keyHash)) as StateRow | undefined;
  if (!row) return undefined;
  const { state_features, state_devices, ...license } = row;
  const devices = jsonArray<RuntimeDeviceFacts>(state_devices);
  return {
    license: license as LicenseRow,
    features: jsonArray<FeatureAssignment>(state_features),
    devices: devices.length > RUNTIME_DEVICES_MAX ? null : devices,
  };
}
