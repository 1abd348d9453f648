// /api/v1/products/{id}/orders and /api/v1/orders/{id} (NOTES §13): linked external order records;
// no billing logic.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata, StringEnum } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { isUniqueViolation, type Q } from "../../store/db.js";
import { findOrder, findOrderByExternal, insertOrder, listOrders, lockOrder, ORDER_STATUSES, type OrderFields, orderFields, orderView, updateOrder } from "../../store/orders.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { findProduct } from "../../store/products.js";
import { findSubscription } from "../../store/subscriptions.js";
import { READ_ERRORS, WRITE_ERRORS } from "./common.js";
import { ClearableRef, changedKeys, checkCustomer, External, Ref } from "./subscriptions.js";

const OrderStatus = StringEnum(ORDER_STATUSES);

export const Order = Type.Object({
  id: Type.String(),
  product_id: Type.String(),
  customer_id: Type.Optional(Type.String()),
  subscription_id: Type.Optional(Type.String()),
  external_system: Type.String(),
  external_id: Type.String(),
  status: OrderStatus,
  period_start: Type.Optional(DateTime),
  period_end: Type.Optional(DateTime),
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

const OrderCreateRequest = Type.Object(
  {
    customer_id: Type.Optional(Ref),
    subscription_id: Type.Optional(Ref),
    external_system: External,
    external_id: External,
    status: OrderStatus,
    period_start: Type.Optional(Type.String({ format: "date-time", description: "Must be provided together with period_end." })),
    period_end: Type.Optional(Type.String({ format: "date-time", description: "Must be provided together with period_start." })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const OrderUpdateRequest = Type.Object(
  {
    customer_id: Type.Optional(ClearableRef),
    subscription_id: Type.Optional(ClearableRef),
    external_system: Type.Optional(External),
    external_id: Type.Optional(External),
    status: Type.Optional(OrderStatus),
    period_start: Type.Optional(DateTime),
    period_end: Type.Optional(DateTime),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const ms = (iso: string | undefined): number | null => (iso === undefined ? null : Date.parse(iso));

function checkPeriod(f: OrderFields): void {
  if ((f.period_start === null) !== (f.period_end === null)) {
    const missing = f.period_start === null ? "period_start" : "period_end";
    throw new ApiError("VALIDATION_ERROR", `field ${missing}: period_start and period_end must be given together`);
  }
  if (f.period_start !== null && f.period_end !== null && f.period_end <= f.period_start) {
    throw new ApiError("VALIDATION_ERROR", "field period_end: must be after period_start");
  }
}

/** 404 naming the field for an unknown subscription; 422 when it belongs to another product. */
async function checkSubscription(q: Q, productId: string, subscriptionId: string | null): Promise<void> {
  if (subscriptionId === null) return;
  const sub = await findSubscription(q, subscriptionId);
  if (!sub) throw new ApiError("NOT_FOUND", `field subscription_id: subscription ${subscriptionId} not found`);
  if (sub.product_id !== productId) {
    throw new ApiError("VALIDATION_ERROR", `field subscription_id: subscription ${sub.id} belongs to product ${sub.product_id}, not ${productId}`);
  }
}

const duplicate = (f: OrderFields, otherId: string) =>
  new ApiError("CONFLICT", `field external_id: ${f.external_system} order "${f.external_id}" is already recorded for this product as ${otherId}`);

async function ensureUniqueExternal(q: Q, productId: string, f: OrderFields, selfId: string | null): Promise<void> {
  const taken = await findOrderByExternal(q, productId, f.external_system, f.external_id);
  if (taken && taken.id !== selfId) throw duplicate(f, taken.id);
}

async function uniqueWrite<T>(f: OrderFields, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(f, "another order");
    throw err;
  }
}

export const orderRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/products/:id/orders",
    {
      config: { scope: "product:read" },
      schema: {
        operationId: "listProductOrders",
        tags: ["commerce"],
        params: IdParams,
        querystring: ListQuery,
        response: { 200: listEnvelope(Order), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const cursor = decodeCursor(req.query.cursor);
      if (!(await findProduct(db, req.params.id))) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
      const page = await listOrders(db, req.params.id, clampLimit(req.query.limit), cursor);
      return { data: page.rows.map(orderView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/products/:id/orders",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "createOrder",
        tags: ["commerce"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: OrderCreateRequest,
        response: { 201: dataEnvelope(Order), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const product = await findProduct(trx, req.params.id);
        if (!product) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
        const b = req.body;
        const f: OrderFields = {
          customer_id: b.customer_id ?? null,
          subscription_id: b.subscription_id ?? null,
          external_system: b.external_system,
          external_id: b.external_id,
          status: b.status,
          period_start: ms(b.period_start),
          period_end: ms(b.period_end),
          metadata: b.metadata ?? {},
        };
        checkPeriod(f);
        await checkCustomer(trx, f.customer_id);
        await checkSubscription(trx, product.id, f.subscription_id);
        await ensureUniqueExternal(trx, product.id, f, null);
        const row = await uniqueWrite(f, () => insertOrder(trx, product.id, f, app.lk.clock.now()));
        await recordEvent(
          trx,
          managementEvent(req, "order.created", "order", row.id, {
            product_id: product.id,
            external_system: row.external_system,
            external_id: row.external_id,
            status: row.status,
            subscription_id: row.subscription_id,
          }),
        );
        return managementOutcome(req, reply, 201, orderView(row));
      }),
  );

  app.get(
    "/orders/:id",
    {
      config: { scope: "product:read" },
      schema: { operationId: "getOrder", tags: ["commerce"], params: IdParams, response: { 200: dataEnvelope(Order), ...errorResponses(...READ_ERRORS) } },
    },
    async (req) => {
      const row = await findOrder(app.lk.store.db, req.params.id);
      if (!row) throw new ApiError("NOT_FOUND", `order ${req.params.id} not found`);
      return { data: orderView(row), meta: responseMeta(req) };
    },
  );

  app.patch(
    "/orders/:id",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "updateOrder",
        tags: ["commerce"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: OrderUpdateRequest,
        response: { 200: dataEnvelope(Order), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockOrder(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `order ${req.params.id} not found`);
        const b = req.body;
        const before = orderFields(row);
        const link = (v: string | undefined, current: string | null) => (v === undefined ? current : v === "" ? null : v);
        const f: OrderFields = {
          customer_id: link(b.customer_id, before.customer_id),
          subscription_id: link(b.subscription_id, before.subscription_id),
          external_system: b.external_system ?? before.external_system,
          external_id: b.external_id ?? before.external_id,
          status: b.status ?? before.status,
          period_start: b.period_start === undefined ? before.period_start : ms(b.period_start),
          period_end: b.period_end === undefined ? before.period_end : ms(b.period_end),
          metadata: b.metadata ?? before.metadata,
        };
        const changed = changedKeys(before, f);
        if (changed.length === 0) return managementOutcome(req, reply, 200, orderView(row));
        checkPeriod(f);
        if (changed.includes("customer_id")) await checkCustomer(trx, f.customer_id);
        if (changed.includes("subscription_id")) await checkSubscription(trx, row.product_id, f.subscription_id);
        if (changed.includes("external_system") || changed.includes("external_id")) await ensureUniqueExternal(trx, row.product_id, f, row.id);
        const next = await uniqueWrite(f, () => updateOrder(trx, row, f, app.lk.clock.now()));
        await recordEvent(trx, managementEvent(req, "order.updated", "order", row.id, { product_id: row.product_id, fields: changed }));
        return managementOutcome(req, reply, 200, orderView(next));
      }),
  );
};
