// Metered consumption (NOTES §7): the atomic check-and-add on a feature assignment's counter, the
// license's running total, and the consumption_events ledger that makes a repeated event_id count
// once and answer as the first did. Callers hold the license row lock (bindDevice takes it).
import type { Selectable } from "kysely";
import type { Q, Tx } from "./db.js";
import { prepare, prepareRow } from "./prepared.js";
import type { ConsumptionEventsTable } from "./schema.js";

export type ConsumptionEventRow = Selectable<ConsumptionEventsTable>;

const consumptionById = prepare(2, (q, licenseId: string, eventId: string) =>
  q.selectFrom("consumption_events").selectAll().where("license_id", "=", licenseId).where("event_id", "=", eventId),
);
const CONSUMPTION_COLUMNS = ["license_id", "event_id", "feature_id", "device_id", "amount", "response_status", "response_body", "created_at"] as const;
const insertConsumptionRow = prepareRow<ConsumptionEventRow, never, typeof CONSUMPTION_COLUMNS>(CONSUMPTION_COLUMNS, (q, row) =>
  q.insertInto("consumption_events").values(row),
);

export function findConsumption(q: Q, licenseId: string, eventId: string): Promise<ConsumptionEventRow | undefined> {
  return consumptionById.first(q, licenseId, eventId);
}

export async function insertConsumption(q: Q, row: ConsumptionEventRow): Promise<void> {
  await insertConsumptionRow.execute(q, row);
}

const featureUsage = prepare(4, (q, licenseId: string, featureId: string, amount: number, now: number) =>
  q
    .updateTable("license_features")
    .set((eb) => ({ total_consumptions: eb("total_consumptions", "+", amount), updated_at: now }))
    .where("license_id", "=", licenseId)
    .where("feature_id", "=", featureId)
    .where((eb) => eb.or([eb("max_consumptions", "is", null), eb(eb("total_consumptions", "+", amount), "<=", eb.ref("max_consumptions"))]))
    .returning(["total_consumptions", "max_consumptions"]),
);
const licenseUsage = prepare(3, (q, licenseId: string, amount: number, now: number) =>
  q
    .updateTable("licenses")
    .set((eb) => ({ total_consumptions: eb("total_consumptions", "+", amount), updated_at: now }))
    .where("id", "=", licenseId)
    .returning("total_consumptions"),
);

/**
 * Adds `amount` to the assignment's counter in ONE conditional statement: the row changes only when
 * no quota is set or `total_consumptions + amount <= max_consumptions`, so no interleaving of
 * consumes (in one process or many) can pass the quota. Undefined when the quota refused it.
 */
export function addFeatureUsage(
  trx: Tx,
  licenseId: string,
  featureId: string,
  amount: number,
  now: number,
): Promise<{ total_consumptions: number; max_consumptions: number | null } | undefined> {
  return featureUsage.first(trx, licenseId, featureId, amount, now);
}

/** The license's own running total (the sum of what its features counted). */
export async function addLicenseUsage(trx: Tx, licenseId: string, amount: number, now: number): Promise<number> {
  return (await licenseUsage.one(trx, licenseId, amount, now)).total_consumptions;
}
