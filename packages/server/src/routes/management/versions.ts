// /api/v1: product versions (GET/POST /products/{id}/versions).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { isUniqueViolation } from "../../store/db.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { findProductVersionByVersion, insertProductVersion, listProductVersions, productVersionView } from "../../store/product-versions.js";
import { findProduct } from "../../store/products.js";
import { READ_ERRORS, WRITE_ERRORS } from "./common.js";

export const ProductVersion = Type.Object({
  id: Type.String(),
  product_id: Type.String(),
  version: Type.String(),
  released_at: DateTime,
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

/** A version label as the client sends it in `app_version`: matched exactly, no surrounding whitespace. */
const VersionLabel = Type.String({ minLength: 1, maxLength: 128, pattern: "^\\S(.*\\S)?$" });

const ProductVersionCreateRequest = Type.Object(
  {
    version: VersionLabel,
    released_at: Type.Optional(Type.String({ format: "date-time", description: "Defaults to the current server time when omitted." })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const versionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/products/:id/versions",
    {
      config: { scope: "product:read" },
      schema: {
        operationId: "listProductVersions",
        tags: ["versions"],
        params: IdParams,
        querystring: ListQuery,
        response: { 200: listEnvelope(ProductVersion), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const cursor = decodeCursor(req.query.cursor); // a bad query is 400 before the parent is looked up
      if (!(await findProduct(db, req.params.id))) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
      const page = await listProductVersions(db, req.params.id, clampLimit(req.query.limit), cursor);
      return { data: page.rows.map(productVersionView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/products/:id/versions",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "createProductVersion",
        tags: ["versions"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: ProductVersionCreateRequest,
        response: { 201: dataEnvelope(ProductVersion), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const product = await findProduct(trx, req.params.id);
        if (!product) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
        const { version } = req.body;
        const taken = () => new ApiError("CONFLICT", `field version: "${version}" is already recorded for product ${product.id}`);
        if (await findProductVersionByVersion(trx, product.id, version)) throw taken();
        const now = app.lk.clock.now();
        const releasedAt = req.body.released_at !== undefined ? Date.parse(req.body.released_at) : now;
        if (!Number.isFinite(releasedAt)) throw new ApiError("VALIDATION_ERROR", "field released_at: is not a valid date-time");
        let row: Awaited<ReturnType<typeof insertProductVersion>>;
        try {
          row = await insertProductVersion(trx, product.id, { version, released_at: releasedAt, metadata: req.body.metadata }, now);
        } catch (err) {
          if (isUniqueViolation(err)) throw taken();
          throw err;
        }
        await recordEvent(
          trx,
          managementEvent(req, "product_version.created", "product_version", row.id, { product_id: product.id, version, released_at: new Date(releasedAt).toISOString() }),
        );
        return managementOutcome(req, reply, 201, productVersionView(row));
      }),
  );
};
