// /api/v1/products/{id}/policies and /api/v1/policies/{id}
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { LICENSE_TYPES } from "../../domain/license-types.js";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, StringEnum, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { findPolicy, insertPolicy, listPolicies, policyView } from "../../store/policies.js";
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
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

/** The v1 request fields plus every Policy field (D11), each optional with its documented default. */
const PolicyCreateRequest = Type.Object(
  {
    name: Name,
    code: Code,
    license_type: LicenseType,
    max_activations: Type.Optional(Int(1, 1_000_000, "Default 1.")),
    max_floating_users: Type.Optional(Int(0, 1_000_000, "Default 0 (floating off).")),
    max_container_instances: Type.Optional(Int(0, 1_000_000, "Default 0 (no limit beyond max_activations).")),
    floating_timeout_minutes: Type.Optional(Int(1, 525_600, "Default 30.")),
    grace_period_days: Type.Optional(Int(0, 3650, "Default 0.")),
    validation_interval_minutes: Type.Optional(Int(1, 525_600, "Default 1440.")),
    require_heartbeat: Type.Optional(Type.Boolean({ description: "Default false." })),
    allow_offline_activation: Type.Optional(Type.Boolean({ description: "Default false." })),
    offline_grace_days: Type.Optional(Int(1, 3650, "Default 7.")),
    allow_vm: Type.Optional(Type.Boolean({ description: "Default true." })),
    allow_container: Type.Optional(Type.Boolean({ description: "Default true." })),
    max_transfers: Type.Optional(Int(0, 1_000_000, "Default 0 (unlimited).")),
    duration_days: Type.Optional(Int(1, 36_500, "Expiry given to new expiring licenses created without expires_at (D13). Default unset.")),
    metadata: Type.Optional(Metadata),
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
      if (!(await findProduct(db, req.params.id))) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
      const page = await listPolicies(db, req.params.id, clampLimit(req.query.limit), decodeCursor(req.query.cursor));
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
};
