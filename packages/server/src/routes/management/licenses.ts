// /api/v1/licenses
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { LifecycleAction } from "../../domain/license-lifecycle.js";
import { resolveOrigin } from "../../domain/license-origin.js";
import { LICENSE_STATUSES } from "../../domain/license-status.js";
import { type LicenseType as LicenseTypeName, resolveLicenseDates } from "../../domain/license-types.js";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, StringEnum, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata } from "../../http/schemas.js";
import { newId, newLicenseKey } from "../../ids.js";
import { recordEvent } from "../../store/audit-events.js";
import { findCustomer } from "../../store/customers.js";
import { findLicenseWithPolicy, insertLicense, licenseView, listLicenses } from "../../store/licenses.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { applyLifecycle } from "../../store/license-lifecycle.js";
import { findPolicy } from "../../store/policies.js";
import { findProduct } from "../../store/products.js";
import { MANAGEMENT_ERRORS, READ_ERRORS, WRITE_ERRORS } from "./common.js";

const LicenseStatus = StringEnum(LICENSE_STATUSES);
const Ref = Type.String({ minLength: 1, maxLength: 64 });

export const License = Type.Object({
  id: Type.String(),
  product_id: Type.String(),
  policy_id: Type.String(),
  customer_id: Type.Optional(Type.String()),
  order_id: Type.Optional(Type.String()),
  subscription_id: Type.Optional(Type.String()),
  status: LicenseStatus,
  license_key_prefix: Type.String(),
  license_key_last4: Type.String(),
  customer_email: Type.Optional(Type.String()),
  customer_name: Type.Optional(Type.String()),
  active_device_count: Type.Integer(),
  times_activated: Type.Integer(),
  times_transferred: Type.Integer(),
  total_consumptions: Type.Integer(),
  entitlement_version: Type.Integer(),
  starts_at: Type.Optional(DateTime),
  expires_at: Type.Optional(DateTime),
  maintenance_expires_at: Type.Optional(DateTime),
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

const LicenseCreateRequest = Type.Object(
  {
    product_id: Ref,
    policy_id: Ref,
    customer_id: Type.Optional(Ref),
    order_id: Type.Optional(Ref),
    subscription_id: Type.Optional(Ref),
    customer_email: Type.Optional(Type.String({ format: "email", maxLength: 320 })),
    customer_name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    starts_at: Type.Optional(DateTime),
    expires_at: Type.Optional(DateTime),
    maintenance_expires_at: Type.Optional(DateTime),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const LicenseCreateResponse = Type.Object({ license: License, license_key: Type.String({ description: "Shown once; only its keyed hash is stored." }) });

const LicenseListQuery = Type.Composite([
  ListQuery,
  Type.Object({
    product_id: Type.Optional(Type.String()),
    policy_id: Type.Optional(Type.String()),
    customer_id: Type.Optional(Type.String()),
    status: Type.Optional(LicenseStatus),
    order_id: Type.Optional(Type.String()),
    subscription_id: Type.Optional(Type.String()),
    expires_before: Type.Optional(DateTime),
    expires_after: Type.Optional(DateTime),
  }),
]);

const ms = (iso: string | undefined): number | undefined => (iso === undefined ? undefined : Date.parse(iso));

export const licenseRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/licenses",
    {
      config: { scope: "license:read" },
      schema: {
        operationId: "listLicenses",
        tags: ["licenses"],
        querystring: LicenseListQuery,
        response: { 200: listEnvelope(License), ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await listLicenses(
        app.lk.store.db,
        { ...q, expires_before: ms(q.expires_before), expires_after: ms(q.expires_after) },
        app.lk.clock.now(),
        clampLimit(q.limit),
        decodeCursor(q.cursor),
      );
      return { data: page.rows, page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/licenses",
    {
      config: { scope: "license:write", idempotency: "optional" },
      schema: {
        operationId: "createLicense",
        tags: ["licenses"],
        headers: IdempotencyHeader(false),
        body: LicenseCreateRequest,
        response: { 201: dataEnvelope(LicenseCreateResponse), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const b = req.body;
        const now = app.lk.clock.now();
        const product = await findProduct(trx, b.product_id);
        if (!product) throw new ApiError("NOT_FOUND", `field product_id: product ${b.product_id} not found`);
        const policy = await findPolicy(trx, b.policy_id);
        if (!policy) throw new ApiError("NOT_FOUND", `field policy_id: policy ${b.policy_id} not found`);
        if (policy.product_id !== product.id) {
          throw new ApiError("VALIDATION_ERROR", `field policy_id: policy ${policy.id} belongs to product ${policy.product_id}, not ${product.id}`);
        }
        if (b.customer_id !== undefined && !(await findCustomer(trx, b.customer_id))) {
          throw new ApiError("NOT_FOUND", `field customer_id: customer ${b.customer_id} not found`);
        }
        // Origin linkage (NOTES §11): same product, order and subscription agree, subscription inferred from the order.
        const origin = await resolveOrigin(trx, { productId: product.id, orderId: b.order_id, subscriptionId: b.subscription_id });

        const dates = resolveLicenseDates(
          policy.license_type as LicenseTypeName,
          policy.duration_days,
          { starts_at: ms(b.starts_at), expires_at: ms(b.expires_at), maintenance_expires_at: ms(b.maintenance_expires_at) },
          now,
        );
        const key = newLicenseKey();
        const row = {
          id: newId("lic", now),
          product_id: product.id,
          policy_id: policy.id,
          customer_id: b.customer_id ?? null,
          order_id: origin.order_id,
          subscription_id: origin.subscription_id,
          key_hash: app.lk.hasher.hash(key),
          key_prefix: key.slice(0, 8),
          key_last4: key.slice(-4),
          state: "active" as const,
          customer_email: b.customer_email ?? null,
          customer_name: b.customer_name ?? null,
          active_device_count: 0,
          times_activated: 0,
          times_transferred: 0,
          total_consumptions: 0,
          entitlement_version: 1,
          ...dates,
          metadata: JSON.stringify(b.metadata ?? {}),
          created_at: now,
          updated_at: now,
        };
        await insertLicense(trx, row);
        await recordEvent(
          trx,
          managementEvent(req, "license.created", "license", row.id, {
            product_id: product.id,
            policy_id: policy.id,
            customer_id: row.customer_id,
            order_id: row.order_id,
            subscription_id: row.subscription_id,
          }),
        );
        return managementOutcome(req, reply, 201, { license: licenseView(row, policy.grace_period_days, now), license_key: key });
      }),
  );

  app.get(
    "/licenses/:id",
    {
      config: { scope: "license:read" },
      schema: { operationId: "getLicense", tags: ["licenses"], params: IdParams, response: { 200: dataEnvelope(License), ...errorResponses(...READ_ERRORS) } },
    },
    async (req) => {
      const found = await findLicenseWithPolicy(app.lk.store.db, req.params.id);
      if (!found) throw new ApiError("NOT_FOUND", `license ${req.params.id} not found`);
      return { data: licenseView(found.license, found.policy.grace_period_days, app.lk.clock.now()), meta: responseMeta(req) };
    },
  );
};

const LIFECYCLE_ROUTES: { action: LifecycleAction; operationId: string; summary: string }[] = [
  { action: "suspend", operationId: "suspendLicense", summary: "Suspend a license (repeating it is a no-op)" },
  { action: "reinstate", operationId: "reinstateLicense", summary: "Reinstate a suspended license (repeating it is a no-op)" },
  { action: "revoke", operationId: "revokeLicense", summary: "Revoke a license permanently; releases its active seats" },
];

export const licenseLifecycleRoutes: FastifyPluginAsyncTypebox = async (app) => {
  for (const { action, operationId, summary } of LIFECYCLE_ROUTES) {
    app.post(
      `/licenses/:id/${action}`,
      {
        config: { scope: "license:write", idempotency: "optional" },
        schema: {
          operationId,
          summary,
          tags: ["licenses"],
          params: IdParams,
          headers: IdempotencyHeader(false),
          // Revoking is permanent and repeating it is a no-op, so revoke never answers CONFLICT.
          response: {
            200: dataEnvelope(License),
            ...errorResponses(...READ_ERRORS, "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS", ...(action === "revoke" ? [] : (["CONFLICT"] as const))),
          },
        },
      },
      async (req, reply) =>
        commitAndRespond(req, reply, async (trx) => {
          const base = managementEvent(req, "license.suspended", "license", req.params.id);
          const res = await applyLifecycle(trx, app.lk.store.engine, req.params.id, action, base);
          if (!res) throw new ApiError("NOT_FOUND", `license ${req.params.id} not found`);
          return managementOutcome(req, reply, 200, licenseView(res.license, res.policy.grace_period_days, app.lk.clock.now()));
        }),
    );
  }
};
