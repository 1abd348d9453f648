// /api/v1/products
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome, noContentOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { isForeignKeyViolation, isUniqueViolation } from "../../store/db.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import {
  changedProductFields,
  deleteProduct,
  findProduct,
  findProductByCode,
  insertProduct,
  listProducts,
  lockProduct,
  productReferences,
  productView,
  updateProduct,
} from "../../store/products.js";
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

/** Every field optional; an empty body changes nothing (200, no event). `metadata` replaces the whole object. */
const ProductUpdateRequest = Type.Partial(ProductCreateRequest, { additionalProperties: false });

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

  app.patch(
    "/products/:id",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "updateProduct",
        tags: ["products"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: ProductUpdateRequest,
        response: { 200: dataEnvelope(Product), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockProduct(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
        const changed = changedProductFields(row, req.body);
        if (changed.length === 0) return managementOutcome(req, reply, 200, productView(row));
        const codeTaken = () => new ApiError("CONFLICT", `field code: "${req.body.code}" is already used by another product`);
        if (changed.includes("code") && (await findProductByCode(trx, req.body.code!))) throw codeTaken();
        let updated: typeof row;
        try {
          updated = await updateProduct(trx, row, req.body, app.lk.clock.now());
        } catch (err) {
          if (isUniqueViolation(err)) throw codeTaken();
          throw err;
        }
        await recordEvent(trx, managementEvent(req, "product.updated", "product", row.id, { code: updated.code, changed }));
        return managementOutcome(req, reply, 200, productView(updated));
      }),
  );

  app.delete(
    "/products/:id",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "deleteProduct",
        tags: ["products"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        response: { 204: Type.Null({ description: "Product deleted; empty body." }), ...errorResponses(...READ_ERRORS, "CONFLICT", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockProduct(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
        const inUse = (what: string) => new ApiError("CONFLICT", `product ${row.id} is still referenced by ${what}; delete or move those first`);
        const refs = await productReferences(trx, row.id);
        if (refs.length > 0) throw inUse(refs.join(", "));
        try {
          await deleteProduct(trx, row.id);
        } catch (err) {
          // a child row committed between the check and the delete
          if (isForeignKeyViolation(err)) throw inUse("records created meanwhile");
          throw err;
        }
        await recordEvent(trx, managementEvent(req, "product.deleted", "product", row.id, { code: row.code, name: row.name }));
        return noContentOutcome(reply);
      }),
  );
};
