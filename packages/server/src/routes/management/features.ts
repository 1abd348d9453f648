// /api/v1: features (products/{id}/features, features/{id}).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { isUniqueViolation } from "../../store/db.js";
import { featureView, findFeature, findFeatureByCode, insertFeature, listFeatures } from "../../store/features.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { findProduct } from "../../store/products.js";
import { Code, Name, READ_ERRORS, WRITE_ERRORS } from "./common.js";

export const Feature = Type.Object({
  id: Type.String(),
  product_id: Type.String(),
  code: Type.String(),
  name: Type.String(),
  metadata: Metadata,
  created_at: DateTime,
});

const FeatureCreateRequest = Type.Object({ name: Name, code: Code, metadata: Type.Optional(Metadata) }, { additionalProperties: false });

export const featureRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/products/:id/features",
    {
      config: { scope: "product:read" },
      schema: {
        operationId: "listFeaturesByProduct",
        tags: ["features"],
        params: IdParams,
        querystring: ListQuery,
        response: { 200: listEnvelope(Feature), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const cursor = decodeCursor(req.query.cursor); // a bad query is 400 before the parent is looked up
      if (!(await findProduct(db, req.params.id))) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
      const page = await listFeatures(db, req.params.id, clampLimit(req.query.limit), cursor);
      return { data: page.rows.map(featureView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/products/:id/features",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "createFeature",
        tags: ["features"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: FeatureCreateRequest,
        response: { 201: dataEnvelope(Feature), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const product = await findProduct(trx, req.params.id);
        if (!product) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
        const taken = (id?: string) =>
          new ApiError("CONFLICT", `field code: "${req.body.code}" is already used by ${id ? `feature ${id}` : "another feature"} of this product`);
        const existing = await findFeatureByCode(trx, product.id, req.body.code);
        if (existing) throw taken(existing.id);
        let row: Awaited<ReturnType<typeof insertFeature>>;
        try {
          row = await insertFeature(trx, product.id, req.body, app.lk.clock.now());
        } catch (err) {
          if (isUniqueViolation(err)) throw taken();
          throw err;
        }
        await recordEvent(trx, managementEvent(req, "feature.created", "feature", row.id, { product_id: product.id, code: row.code }));
        return managementOutcome(req, reply, 201, featureView(row));
      }),
  );

  app.get(
    "/features/:id",
    {
      config: { scope: "product:read" },
      schema: { operationId: "getFeature", tags: ["features"], params: IdParams, response: { 200: dataEnvelope(Feature), ...errorResponses(...READ_ERRORS) } },
    },
    async (req) => {
      const row = await findFeature(app.lk.store.db, req.params.id);
      if (!row) throw new ApiError("NOT_FOUND", `feature ${req.params.id} not found`);
      return { data: featureView(row), meta: responseMeta(req) };
    },
  );
};
