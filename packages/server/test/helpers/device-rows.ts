// A hardware device row to insert straight into `devices`, for tests of what reads or writes device
// rows outside the runtime routes (the batched stamps): seen first and last at `seenAt`.
import type { Insertable } from "kysely";
import { newId } from "../../src/ids.js";
import type { DevicesTable } from "../../src/store/schema.js";

export function deviceRow(licenseId: string, seenAt: number, validatedAt: number | null, ip: string | null): Insertable<DevicesTable> & { id: string } {
  const id = newId("dev");
  return {
    id,
    license_id: licenseId,
    binding_kind: "hardware",
    binding_key: `test-${id}`,
    fingerprint: `test-${id}`,
    hostname: null,
    os: null,
    ip_address: ip,
    is_vm: 0,
    is_container: 0,
    container_id: null,
    cluster_id: null,
    namespace: null,
    pod_name: null,
    status: "active",
    first_seen_at: seenAt,
    last_seen_at: seenAt,
    last_validated_at: validatedAt,
    metadata: "{}",
    created_at: seenAt,
    updated_at: seenAt,
  };
}
