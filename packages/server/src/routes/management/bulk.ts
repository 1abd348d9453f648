// POST /api/v1/licenses/bulk (beyond the contract): suspend, reinstate, revoke or renew up to 1000
// licenses, named by id or selected by a filter. Idempotency-Key required.
//
// Design: one database transaction for the whole request, so the idempotency record (written by
// commitAndRespond in that same transaction) stores exactly the answer whose changes committed, and a
// replay returns it byte for byte. Inside it each license runs in its own SAVEPOINT: a license that
// fails (unknown, revoked, not renewable) is rolled back to its savepoint and reported as an error
// result without undoing the others. Licenses are processed in id order, so two concurrent bulk
// requests take row locks in the same order and cannot deadlock; results keep the request's order.
// The work per license is the single-license code (applyLifecycle, renewLicense), so each changed
// license records the same one event the single routes record (metadata.bulk = true).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { sql } from "kysely";
import { type LifecycleAction, LIFECYCLE_EVENT } from "../../domain/license-lifecycle.js";
import { checkRenewalInput, type RenewalInput } from "../../domain/license-renewal.js";
import { managementEvent } from "../../http/actor.js";
import { toApiError } from "../../http/error-handler.js";
import { ApiError, type ErrorBody, errorBody } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { dataEnvelope, ErrorObject, errorResponses, IdempotencyHeader, StringEnum } from "../../http/schemas.js";
import type { Tx } from "../../store/db.js";
import { licenseIdsMatching, renewLicense } from "../../store/license-actions.js";
import { lockLicense } from "../../store/licenses.js";
import { applyLifecycle } from "../../store/license-lifecycle.js";
import { type LicenseView, licenseView } from "../../store/licenses.js";
import { WRITE_ERRORS } from "./common.js";
import { License } from "./licenses.js";

export const BULK_MAX = 1000;
const BULK_ACTIONS = ["suspend", "reinstate", "revoke", "renew"] as const;
type BulkAction = (typeof BULK_ACTIONS)[number];

const Ref = Type.String({ minLength: 1, maxLength: 64 });

const BulkLicenseActionRequest = Type.Object(
  {
    action: StringEnum(BULK_ACTIONS),
    license_ids: Type.Optional(Type.Array(Ref, { minItems: 1, maxItems: BULK_MAX, uniqueItems: true })),
    filter: Type.Optional(
      Type.Object(
        { customer_id: Type.Optional(Ref), product_id: Type.Optional(Ref), policy_id: Type.Optional(Ref) },
        { additionalProperties: false, description: "At least one field; matches licenses with all of them. At most 1000 may match." },
      ),
    ),
    extend_by_days: Type.Optional(Type.Integer({ minimum: 1, description: "renew only" })),
    expires_at: Type.Optional(Type.String({ format: "date-time", description: "renew only" })),
  },
  { additionalProperties: false, description: "Exactly one of license_ids or filter; for renew exactly one of extend_by_days or expires_at." },
);

const BulkResult = Type.Object({
  license_id: Type.String(),
  status: StringEnum(["ok", "error"] as const),
  license: Type.Optional(License),
  error: Type.Optional(ErrorObject),
});

const BulkLicenseActionResponse = Type.Object({
  action: StringEnum(BULK_ACTIONS),
  results: Type.Array(BulkResult, { description: "One per license, in the order of license_ids (filter: newest first)." }),
  succeeded: Type.Integer(),
  failed: Type.Integer(),
});

type Result = { license_id: string; status: "ok"; license: LicenseView } | { license_id: string; status: "error"; error: ErrorBody };

export const bulkRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/licenses/bulk",
    {
      config: { scope: "license:write", idempotency: "required" },
      schema: {
        operationId: "bulkLicenseAction",
        summary: "Suspend, reinstate, revoke or renew up to 1000 licenses; each succeeds or fails on its own",
        tags: ["licenses"],
        headers: IdempotencyHeader(true),
        body: BulkLicenseActionRequest,
        response: { 200: dataEnvelope(BulkLicenseActionResponse), ...errorResponses(...WRITE_ERRORS, "IDEMPOTENCY_KEY_REQUIRED") },
      },
    },
    async (req, reply) => {
      const b = req.body;
      if ((b.license_ids === undefined) === (b.filter === undefined)) {
        throw new ApiError("VALIDATION_ERROR", "field license_ids, filter: provide exactly one of license_ids or filter");
      }
      if (b.filter && Object.keys(b.filter).length === 0) {
        throw new ApiError("VALIDATION_ERROR", "field filter: give at least one of customer_id, product_id, policy_id");
      }
      const renewal: RenewalInput = { expires_at: b.expires_at === undefined ? undefined : Date.parse(b.expires_at), extend_by_days: b.extend_by_days };
      if (b.action === "renew") {
        checkRenewalInput(renewal);
        // Refused once for the request rather than once per license.
        if (renewal.expires_at !== undefined && renewal.expires_at <= app.lk.clock.now()) throw new ApiError("VALIDATION_ERROR", "field expires_at: must be in the future");
      } else if (b.extend_by_days !== undefined || b.expires_at !== undefined) {
        throw new ApiError("VALIDATION_ERROR", `field ${b.extend_by_days !== undefined ? "extend_by_days" : "expires_at"}: only allowed with action renew`);
      }
      const engine = app.lk.store.engine;

      /** One license's change, exactly as the single-license route makes it. */
      const applyOne = async (trx: Tx, id: string, action: BulkAction): Promise<LicenseView> => {
        if (action === "renew") {
          const locked = await lockLicense(trx, engine, id);
          if (!locked) throw new ApiError("NOT_FOUND", `license ${id} not found`);
          const updated = await renewLicense(trx, locked, renewal, managementEvent(req, "license.renewed", "license", id, { bulk: true }));
          return licenseView(updated, locked.policy.grace_period_days, app.lk.clock.now());
        }
        const res = await applyLifecycle(trx, engine, id, action, managementEvent(req, LIFECYCLE_EVENT[action as LifecycleAction], "license", id, { bulk: true }));
        if (!res) throw new ApiError("NOT_FOUND", `license ${id} not found`);
        return licenseView(res.license, res.policy.grace_period_days, app.lk.clock.now());
      };

      return commitAndRespond(req, reply, async (trx) => {
        const ids = b.license_ids ?? (await licenseIdsMatching(trx, b.filter!, BULK_MAX + 1));
        if (ids.length > BULK_MAX) throw new ApiError("VALIDATION_ERROR", `field filter: matches more than ${BULK_MAX} licenses; narrow it or send license_ids in batches`);
        const byId = new Map<string, Result>();
        for (const id of [...ids].sort()) {
          await sql`savepoint bulk_license`.execute(trx);
          try {
            const license = await applyOne(trx, id, b.action);
            await sql`release savepoint bulk_license`.execute(trx);
            byId.set(id, { license_id: id, status: "ok", license });
          } catch (err) {
            await sql`rollback to savepoint bulk_license`.execute(trx);
            await sql`release savepoint bulk_license`.execute(trx);
            const { error, unexpected } = toApiError(err);
            if (unexpected) throw err; // a fault, not a refusal: fail the whole request, store nothing
            byId.set(id, { license_id: id, status: "error", error: errorBody(error) });
          }
        }
        const results = ids.map((id) => byId.get(id)!);
        const succeeded = results.filter((r) => r.status === "ok").length;
        return managementOutcome(req, reply, 200, { action: b.action, results, succeeded, failed: results.length - succeeded });
      });
    },
  );
};
