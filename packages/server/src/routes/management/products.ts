// /api/v1/products
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { findProduct, findProductByCode, insertProduct, listProducts, productView } from "../../store/products.js";
import { Code, MANAGEMENT_ERRORS, Name, READ_ERRORS, WRITE_ERRORS } from "./common.js";

export const Product = Type.Object({
  id: Type.String(),
  name: Type.String(),
  code: Type.String(),
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

const ProductCreateRequest = Type.Object({ name: Name, code: Code, metadata: Type.Optional(Metadata) }, { additionalProperties: false });

export const productRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/products",
    {
      config: { scope: "product:read" },
      schema: {
        operationId: "listProducts",
        tags: ["products"],
        querystring: ListQuery,
        response: { 200: listEnvelope(Product), ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const page = await listProducts(app.lk.store.db, clampLimit(req.query.limit), decodeCursor(req.query.cursor));
      return { data: page.rows.map(productView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/products",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "createProduct",
        tags: ["products"],
        headers: IdempotencyHeader(false),
        body: ProductCreateRequest,
        response: { 201: dataEnvelope(Product), ...errorResponses(...WRITE_ERRORS) },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const taken = await findProductByCode(trx, req.body.code);
        if (taken) throw new ApiError("CONFLICT", `field code: "${req.body.code}" is already used by product ${taken.id}`);
        const row = await insertProduct(trx, req.body, app.lk.clock.now());
        await recordEvent(trx, managementEvent(req, "product.created", "product", row.id, { code: row.code }));
        return managementOutcome(req, reply, 201, productView(row));
      }),
  );

  app.get(
    "/products/:id",
    {
      config: { scope: "product:read" },
      schema: { operationId: "getProduct", tags: ["products"], params: IdParams, response: { 200: dataEnvelope(Product), ...errorResponses(...READ_ERRORS) } },
    },
    async (req) => {
      const row = await findProduct(app.lk.store.db, req.params.id);
      if (!row) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
      return { data: productView(row), meta: responseMeta(req) };
    },
  );
};
