// /api/v1/licenses/{id}/leases: list and release floating leases (beyond the contract). A lease's
// status is computed from the clock like a license's: an active lease past its expiry shows
// `expired` even before the expiry job has marked it. The view never shows the token or its hash.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { LEASE_STATUSES, leaseStatusAt } from "../../domain/floating.js";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdempotencyHeader, IdParams, ListQuery, listEnvelope, StringEnum } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { endLease, findLicenseLease, leaseView, listLicenseLeases } from "../../store/leases.js";
import { findLicense } from "../../store/licenses.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { MANAGEMENT_ERRORS, READ_ERRORS } from "./common.js";

export const FloatingLease = Type.Object({
  id: Type.String(),
  license_id: Type.String(),
  device_id: Type.String(),
  status: StringEnum(LEASE_STATUSES, { description: "`active` while it holds a seat; `expired` once past expires_at without a heartbeat." }),
  expires_at: DateTime,
  last_heartbeat_at: Type.Optional(DateTime),
  ended_at: Type.Optional(DateTime),
  created_at: DateTime,
  updated_at: DateTime,
});

const LeaseListQuery = Type.Composite([ListQuery, Type.Object({ status: Type.Optional(StringEnum(LEASE_STATUSES)) })]);
const LeaseParams = Type.Object({ id: Type.String(), lease_id: Type.String() });

export const leaseRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/licenses/:id/leases",
    {
      config: { scope: "license:read" },
      schema: {
        operationId: "listLicenseLeases",
        summary: "List the floating leases of a license, newest first",
        tags: ["leases"],
        params: IdParams,
        querystring: LeaseListQuery,
        response: { 200: listEnvelope(FloatingLease), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const limit = clampLimit(req.query.limit);
      const before = decodeCursor(req.query.cursor);
      if (!(await findLicense(db, req.params.id))) throw new ApiError("NOT_FOUND", `license ${req.params.id} not found`);
      const now = app.lk.clock.now();
      const page = await listLicenseLeases(db, req.params.id, req.query.status, now, limit, before);
      return { data: page.rows.map((r) => leaseView(r, now)), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/licenses/:id/leases/:lease_id/release",
    {
      config: { scope: "license:write", idempotency: "optional" },
      schema: {
        operationId: "releaseLicenseLease",
        summary: "Release an active floating lease: its seat is free at once and its token stops working (409 unless active)",
        tags: ["leases"],
        params: LeaseParams,
        headers: IdempotencyHeader(false),
        response: { 200: dataEnvelope(FloatingLease), ...errorResponses(...MANAGEMENT_ERRORS, "NOT_FOUND", "CONFLICT", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const { id, lease_id } = req.params;
        const now = app.lk.clock.now();
        const lease = await findLicenseLease(trx, id, lease_id);
        if (!lease) throw new ApiError("NOT_FOUND", `lease ${lease_id} not found on license ${id}`);
        const released = await endLease(trx, lease, "released", now);
        if (!released) {
          const current = (await findLicenseLease(trx, id, lease_id)) ?? lease;
          throw new ApiError("CONFLICT", `lease ${lease_id} is ${leaseStatusAt(current, now)}, not active; only an active lease can be released`);
        }
        await recordEvent(trx, managementEvent(req, "floating.released", "license", id, { lease_id, device_id: lease.device_id }));
        return managementOutcome(req, reply, 200, leaseView(released, now));
      }),
  );
};
