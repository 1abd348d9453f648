// /api/v1/licenses/{id}/features and /usage/reset (NOTES §7): feature assignments and usage reset.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome, noContentOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata } from "../../http/schemas.js";
import { lockLicense } from "../../store/licenses.js";
import { assignFeature, checkUsageReset, listLicenseFeatures, removeFeature, resetUsage } from "../../store/license-features.js";
import { findLicense } from "../../store/licenses.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { READ_ERRORS, WRITE_ERRORS } from "./common.js";

const Ref = Type.String({ minLength: 1, maxLength: 64 });
/** Counters are int64 in the contract; this server keeps them within 2^53 (D4) so JSON stays exact. */
const Count = (minimum: number) => Type.Integer({ minimum, maximum: Number.MAX_SAFE_INTEGER });

export const LicenseFeature = Type.Object({
  license_id: Type.String(),
  feature_id: Type.String(),
  feature_code: Type.String(),
  feature_name: Type.String(),
  enabled: Type.Boolean(),
  max_consumptions: Type.Optional(Type.Integer()),
  total_consumptions: Type.Integer(),
  remaining: Type.Optional(Type.Integer()),
  expires_at: Type.Optional(DateTime),
  metadata: Metadata,
});

const LicenseFeatureAssignRequest = Type.Object(
  {
    feature_id: Ref,
    enabled: Type.Optional(Type.Boolean({ description: "Default true on a new assignment." })),
    max_consumptions: Type.Optional(Count(0)),
    expires_at: Type.Optional(DateTime),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false, description: "Assigns the feature, or updates the assignment: fields left out keep their current value." },
);

const LicenseFeatureUsageResetRequest = Type.Object(
  {
    feature_id: Type.Optional(Ref),
    feature_code: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    add_credits: Type.Optional(Count(1)),
    max_consumptions: Type.Optional(Count(0)),
    total_consumptions: Type.Optional(Count(0)),
    reset_consumed: Type.Optional(Type.Boolean()),
  },
  {
    additionalProperties: false,
    description: "Exactly one of feature_id / feature_code, and at least one of add_credits, max_consumptions, total_consumptions, reset_consumed: true.",
  },
);

const FeatureParams = Type.Object({ id: Type.String(), feature_id: Type.String() });

export const licenseFeatureRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/licenses/:id/features",
    {
      config: { scope: "license:read" },
      schema: {
        operationId: "listLicenseFeatures",
        summary: "List the features assigned to a license, newest feature first",
        tags: ["features"],
        params: IdParams,
        querystring: ListQuery,
        response: { 200: listEnvelope(LicenseFeature), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const limit = clampLimit(req.query.limit);
      const before = decodeCursor(req.query.cursor);
      if (!(await findLicense(db, req.params.id))) throw new ApiError("NOT_FOUND", `license ${req.params.id} not found`);
      const page = await listLicenseFeatures(db, req.params.id, limit, before);
      return { data: page.rows, page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/licenses/:id/features",
    {
      config: { scope: "license:write", idempotency: "optional" },
      schema: {
        operationId: "assignLicenseFeature",
        summary: "Assign a feature of the license's product, or update its assignment",
        tags: ["features"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: LicenseFeatureAssignRequest,
        response: { 200: dataEnvelope(LicenseFeature), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const b = req.body;
        const locked = await lockLicense(trx, app.lk.store.engine, req.params.id);
        if (!locked) throw new ApiError("NOT_FOUND", `license ${req.params.id} not found`);
        const event = managementEvent(req, "license.feature_assigned", "license", locked.license.id);
        const view = await assignFeature(trx, locked, { ...b, expires_at: b.expires_at === undefined ? undefined : Date.parse(b.expires_at) }, event);
        return managementOutcome(req, reply, 200, view);
      }),
  );

  app.delete(
    "/licenses/:id/features/:feature_id",
    {
      config: { scope: "license:write", idempotency: "optional" },
      schema: {
        operationId: "removeLicenseFeature",
        summary: "Remove a feature assignment from a license (409 on a revoked license)",
        tags: ["features"],
        params: FeatureParams,
        headers: IdempotencyHeader(false),
        response: { 204: Type.Null({ description: "Removed." }), ...errorResponses(...READ_ERRORS, "CONFLICT", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const { id, feature_id } = req.params;
        const locked = await lockLicense(trx, app.lk.store.engine, id);
        if (!locked) throw new ApiError("NOT_FOUND", `license ${id} not found`);
        const event = managementEvent(req, "license.feature_removed", "license", id);
        if (!(await removeFeature(trx, locked, feature_id, event))) throw new ApiError("NOT_FOUND", `feature ${feature_id} is not assigned to license ${id}`);
        return noContentOutcome(reply);
      }),
  );

  app.post(
    "/licenses/:id/usage/reset",
    {
      config: { scope: "license:write", idempotency: "optional" },
      schema: {
        operationId: "resetLicenseUsage",
        summary: "Reset or top up one feature's metered usage on a license",
        tags: ["features"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: LicenseFeatureUsageResetRequest,
        response: { 200: dataEnvelope(LicenseFeature), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) => {
      checkUsageReset(req.body);
      return commitAndRespond(req, reply, async (trx) => {
        const locked = await lockLicense(trx, app.lk.store.engine, req.params.id);
        if (!locked) throw new ApiError("NOT_FOUND", `license ${req.params.id} not found`);
        const event = managementEvent(req, "license.usage_reset", "license", locked.license.id);
        return managementOutcome(req, reply, 200, await resetUsage(trx, locked, req.body, event));
      });
    },
  );
};
