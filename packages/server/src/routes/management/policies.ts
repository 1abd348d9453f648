// /api/v1/products/{id}/policies and /api/v1/policies/{id}
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { LICENSE_TYPES } from "../../domain/license-types.js";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome, noContentOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, StringEnum, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { isForeignKeyViolation, isUniqueViolation } from "../../store/db.js";
import {
  countPolicyLicenses,
  deletePolicy,
  findPolicy,
  insertPolicy,
  listPolicies,
  lockPolicy,
  policyChanges,
  policyView,
  updatePolicy,
} from "../../store/policies.js";
import { findProduct } from "../../store/products.js";
import { Code, Name, READ_ERRORS, WRITE_ERRORS } from "./common.js";

export const LicenseType = StringEnum(LICENSE_TYPES);
const Int = (minimum: number, maximum: number, description?: string) => Type.Integer({ minimum, maximum, ...(description ? { description } : {}) });

export const Policy = Type.Object({
  id: Type.String(),
  product_id: Type.String(),
  name: Type.String(),
  code: Type.String(),
  license_type: LicenseType,
  max_activations: Type.Integer(),
  max_floating_users: Type.Integer(),
  max_container_instances: Type.Integer(),
  floating_timeout_minutes: Type.Integer(),
  grace_period_days: Type.Integer(),
  validation_interval_minutes: Type.Integer(),
  require_heartbeat: Type.Boolean(),
  allow_offline_activation: Type.Boolean(),
  offline_grace_days: Type.Integer(),
  allow_vm: Type.Boolean(),
  allow_container: Type.Boolean(),
  max_transfers: Type.Integer(),
  duration_days: Type.Optional(Type.Integer()),
  max_deactivations: Type.Integer({ description: "D12: client deactivations allowed within deactivation_window_days; 0 = unlimited." }),
  deactivation_window_days: Type.Integer({ description: "D12: the sliding window, in days, that max_deactivations counts over." }),
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

/** The Policy settings beyond name/code/license_type (D11), with the limits create and update share. */
function policySettings(withDefaults: boolean) {
  const d = (text: string) => (withDefaults ? text : undefined);
  const Bool = (text: string) => Type.Boolean(withDefaults ? { description: text } : {});
  return {
    max_activations: Type.Optional(Int(1, 1_000_000, d("Default 1."))),
    max_floating_users: Type.Optional(Int(0, 1_000_000, d("Default 0 (floating off)."))),
    max_container_instances: Type.Optional(Int(0, 1_000_000, d("Default 0 (no limit beyond max_activations)."))),
    floating_timeout_minutes: Type.Optional(Int(1, 525_600, d("Default 30."))),
    grace_period_days: Type.Optional(Int(0, 3650, d("Default 0."))),
    validation_interval_minutes: Type.Optional(Int(1, 525_600, d("Default 1440."))),
    require_heartbeat: Type.Optional(Bool("Default false.")),
    allow_offline_activation: Type.Optional(Bool("Default false.")),
    offline_grace_days: Type.Optional(Int(1, 3650, d("Default 7."))),
    allow_vm: Type.Optional(Bool("Default true.")),
    allow_container: Type.Optional(Bool("Default true.")),
    max_transfers: Type.Optional(Int(0, 1_000_000, d("Default 0 (unlimited)."))),
    // D12: deactivate-then-activate-elsewhere churn limit (management device reset is not counted).
    max_deactivations: Type.Optional(Int(0, 1_000_000, d("Client deactivations allowed per deactivation_window_days (D12). Default 0 (unlimited)."))),
    deactivation_window_days: Type.Optional(Int(1, 3650, d("The window max_deactivations counts over, in days (D12). Default 30."))),
    metadata: Type.Optional(Metadata),
  };
}

const DURATION_DAYS_LIMITS = [1, 36_500] as const;

/** The v1 request fields plus every Policy field (D11), each optional with its documented default. */
const PolicyCreateRequest = Type.Object(
  {
    name: Name,
    code: Code,
    license_type: LicenseType,
    ...policySettings(true),
    duration_days: Type.Optional(Int(...DURATION_DAYS_LIMITS, "Expiry given to new expiring licenses created without expires_at (D13). Default unset.")),
  },
  { additionalProperties: false },
);

/**
 * The v1 update fields plus every Policy field (D11), all optional, with the same limits as create.
 * An empty body changes nothing (200, no event). `duration_days: null` unsets it; `metadata` replaces
 * the whole object. `license_type` cannot change while licenses use the policy (409).
 */
const PolicyUpdateRequest = Type.Object(
  {
    name: Type.Optional(Name),
    code: Type.Optional(Code),
    license_type: Type.Optional(LicenseType),
    ...policySettings(false),
    // One schema (not anyOf) so that 0 is a rule break (422) and "x" a wrong type (400).
    duration_days: Type.Optional(
      Type.Unsafe<number | null>({ type: ["integer", "null"], minimum: DURATION_DAYS_LIMITS[0], maximum: DURATION_DAYS_LIMITS[1], description: "null unsets it." }),
    ),
  },
  { additionalProperties: false },
);

export const policyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/products/:id/policies",
    {
      config: { scope: "product:read" },
      schema: {
        operationId: "listPoliciesByProduct",
        tags: ["policies"],
        params: IdParams,
        querystring: ListQuery,
        response: { 200: listEnvelope(Policy), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const cursor = decodeCursor(req.query.cursor); // a bad query is 400 before the parent is looked up
      if (!(await findProduct(db, req.params.id))) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
      const page = await listPolicies(db, req.params.id, clampLimit(req.query.limit), cursor);
      return { data: page.rows.map(policyView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/products/:id/policies",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "createPolicy",
        tags: ["policies"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: PolicyCreateRequest,
        response: { 201: dataEnvelope(Policy), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const product = await findProduct(trx, req.params.id);
        if (!product) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
        const taken = await trx.selectFrom("policies").select("id").where("product_id", "=", product.id).where("code", "=", req.body.code).executeTakeFirst();
        if (taken) throw new ApiError("CONFLICT", `field code: "${req.body.code}" is already used by policy ${taken.id} of this product`);
        const row = await insertPolicy(trx, product.id, req.body, app.lk.clock.now());
        await recordEvent(trx, managementEvent(req, "policy.created", "policy", row.id, { product_id: product.id, code: row.code }));
        return managementOutcome(req, reply, 201, policyView(row));
      }),
  );

  app.get(
    "/policies/:id",
    {
      config: { scope: "product:read" },
      schema: { operationId: "getPolicy", tags: ["policies"], params: IdParams, response: { 200: dataEnvelope(Policy), ...errorResponses(...READ_ERRORS) } },
    },
    async (req) => {
      const row = await findPolicy(app.lk.store.db, req.params.id);
      if (!row) throw new ApiError("NOT_FOUND", `policy ${req.params.id} not found`);
      return { data: policyView(row), meta: responseMeta(req) };
    },
  );

  app.patch(
    "/policies/:id",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "updatePolicy",
        tags: ["policies"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: PolicyUpdateRequest,
        response: { 200: dataEnvelope(Policy), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        // The lock keeps licenses from being created on the policy while its license_type is judged.
        const row = await lockPolicy(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `policy ${req.params.id} not found`);
        const changes = policyChanges(row, req.body);
        const changed = Object.keys(changes);
        if (changed.length === 0) return managementOutcome(req, reply, 200, policyView(row));
        if (changes.license_type !== undefined) {
          const n = await countPolicyLicenses(trx, row.id);
          if (n > 0) {
            throw new ApiError(
              "CONFLICT",
              `field license_type: cannot change from ${row.license_type} to ${changes.license_type} while ${n} license${n === 1 ? " uses" : "s use"} this policy`,
            );
          }
        }
        const codeTaken = () => new ApiError("CONFLICT", `field code: "${req.body.code}" is already used by another policy of this product`);
        if (changes.code !== undefined) {
          const taken = await trx.selectFrom("policies").select("id").where("product_id", "=", row.product_id).where("code", "=", changes.code).executeTakeFirst();
          if (taken) throw codeTaken();
        }
        let updated: typeof row;
        try {
          updated = await updatePolicy(trx, row, changes, app.lk.clock.now());
        } catch (err) {
          if (isUniqueViolation(err)) throw codeTaken();
          throw err;
        }
        // Licenses read their policy live, so nothing on them changes; the event lists what did.
        await recordEvent(trx, managementEvent(req, "policy.updated", "policy", row.id, { product_id: row.product_id, code: updated.code, changed }));
        return managementOutcome(req, reply, 200, policyView(updated));
      }),
  );

  app.delete(
    "/policies/:id",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "deletePolicy",
        tags: ["policies"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        response: { 204: Type.Null({ description: "Policy deleted; empty body." }), ...errorResponses(...READ_ERRORS, "CONFLICT", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockPolicy(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `policy ${req.params.id} not found`);
        const inUse = (what: string) => new ApiError("CONFLICT", `policy ${row.id} is used by ${what}; it cannot be deleted`);
        const n = await countPolicyLicenses(trx, row.id);
        if (n > 0) throw inUse(`${n} license${n === 1 ? "" : "s"}`);
        try {
          await deletePolicy(trx, row.id);
        } catch (err) {
          if (isForeignKeyViolation(err)) throw inUse("a license created meanwhile");
          throw err;
        }
        await recordEvent(trx, managementEvent(req, "policy.deleted", "policy", row.id, { product_id: row.product_id, code: row.code }));
        return noContentOutcome(reply);
      }),
  );
};
