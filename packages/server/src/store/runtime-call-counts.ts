// Reads of the per-license hourly runtime call counts (D7), written by the batched side-effect flush
// (src/jobs/side-effects.ts). Counts lag the calls by up to one flush interval.
import type { Q } from "./db.js";
import type { RuntimeCallCountsTable } from "./schema.js";

const HOUR_MS = 3_600_000;

/** Epoch ms of the start of the UTC hour that contains `at` (the counts' `hour_start`). */
export function hourStart(at: number): number {
  return Math.floor(at / HOUR_MS) * HOUR_MS;
}

export interface HourlyCallCount {
  /** Epoch ms of the start of the UTC hour. */
  hour_start: number;
  operation: RuntimeCallCountsTable["operation"];
  calls: number;
}

/**
 * The license's counts for every hour that overlaps [from, to) (epoch ms): hour_start from the start
 * of `from`'s hour, and before `to`. Oldest hour first, then by operation; hours without calls have no row.
 */
export async function callCountsFor(q: Q, licenseId: string, from: number, to: number): Promise<HourlyCallCount[]> {
  const rows = await q
    .selectFrom("runtime_call_counts")
    .select(["hour_start", "operation", "calls"])
    .where("license_id", "=", licenseId)
    .where("hour_start", ">=", hourStart(from))
    .where("hour_start", "<", to)
    .orderBy("hour_start")
    .orderBy("operation")
    .execute();
  return rows.map((r) => ({ hour_start: Number(r.hour_start), operation: r.operation, calls: Number(r.calls) }));
}
