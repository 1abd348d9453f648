// /api/v1/products/{id}/subscriptions and /api/v1/subscriptions/{id} (NOTES §13): linked external
// subscription records; no billing logic.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata, StringEnum } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { findCustomer } from "../../store/customers.js";
import { isUniqueViolation, type Q } from "../../store/db.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { findProduct } from "../../store/products.js";
import {
  findSubscription,
  findSubscriptionByExternal,
  insertSubscription,
  listSubscriptions,
  lockSubscription,
  SUBSCRIPTION_STATUSES,
  type SubscriptionFields,
  subscriptionFields,
  subscriptionView,
  updateSubscription,
} from "../../store/subscriptions.js";
import { READ_ERRORS, WRITE_ERRORS } from "./common.js";

export const SubscriptionStatus = StringEnum(SUBSCRIPTION_STATUSES);
/** An external system name or id (e.g. "stripe", "sub_123"). */
export const External = Type.String({ minLength: 1, maxLength: 200 });
export const Ref = Type.String({ minLength: 1, maxLength: 64 });
/** A link on PATCH: an id, or "" to clear it. */
export const ClearableRef = Type.String({ maxLength: 64, description: "Send an empty string to clear the current link." });

export const Subscription = Type.Object({
  id: Type.String(),
  product_id: Type.String(),
  customer_id: Type.Optional(Type.String()),
  external_system: Type.String(),
  external_id: Type.String(),
  status: SubscriptionStatus,
  current_period_start: DateTime,
  current_period_end: DateTime,
  cancel_at_period_end: Type.Boolean(),
  canceled_at: Type.Optional(DateTime),
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

const SubscriptionCreateRequest = Type.Object(
  {
    customer_id: Type.Optional(Ref),
    external_system: External,
    external_id: External,
    status: SubscriptionStatus,
    current_period_start: DateTime,
    current_period_end: DateTime,
    cancel_at_period_end: Type.Optional(Type.Boolean({ description: "Defaults to false." })),
    canceled_at: Type.Optional(Type.String({ format: "date-time", description: "Allowed only when status is canceled." })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const SubscriptionUpdateRequest = Type.Object(
  {
    customer_id: Type.Optional(ClearableRef),
    external_system: Type.Optional(External),
    external_id: Type.Optional(External),
    status: Type.Optional(SubscriptionStatus),
    current_period_start: Type.Optional(DateTime),
    current_period_end: Type.Optional(DateTime),
    cancel_at_period_end: Type.Optional(Type.Boolean()),
    canceled_at: Type.Optional(
      Type.String({ format: "date-time", description: "Allowed only when status is canceled; moving status away from canceled clears it." }),
    ),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const ms = (iso: string): number => Date.parse(iso);

/** The keys whose values differ (compared as JSON). */
export function changedKeys<T extends object>(before: T, after: T): (keyof T & string)[] {
  return (Object.keys(after) as (keyof T & string)[]).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
}

/** 404 naming the field when a linked customer does not exist. */
export async function checkCustomer(q: Q, customerId: string | null): Promise<void> {
  if (customerId !== null && !(await findCustomer(q, customerId))) throw new ApiError("NOT_FOUND", `field customer_id: customer ${customerId} not found`);
}

function checkSubscriptionRules(f: SubscriptionFields): void {
  if (f.current_period_end <= f.current_period_start) {
    throw new ApiError("VALIDATION_ERROR", "field current_period_end: must be after current_period_start");
  }
  if (f.canceled_at !== null && f.status !== "canceled") {
    throw new ApiError("VALIDATION_ERROR", `field canceled_at: allowed only when status is canceled (status is ${f.status})`);
  }
}

const duplicate = (f: SubscriptionFields, otherId: string) =>
  new ApiError("CONFLICT", `field external_id: ${f.external_system} subscription "${f.external_id}" is already recorded for this product as ${otherId}`);

/** The duplicate check; the unique constraint still backs it when two writers race. */
async function ensureUniqueExternal(q: Q, productId: string, f: SubscriptionFields, selfId: string | null): Promise<void> {
  const taken = await findSubscriptionByExternal(q, productId, f.external_system, f.external_id);
  if (taken && taken.id !== selfId) throw duplicate(f, taken.id);
}

async function uniqueWrite<T>(f: SubscriptionFields, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(f, "another subscription");
    throw err;
  }
}

export const subscriptionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/products/:id/subscriptions",
    {
      config: { scope: "product:read" },
      schema: {
        operationId: "listProductSubscriptions",
        tags: ["commerce"],
        params: IdParams,
        querystring: ListQuery,
        response: { 200: listEnvelope(Subscription), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const cursor = decodeCursor(req.query.cursor);
      if (!(await findProduct(db, req.params.id))) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
      const page = await listSubscriptions(db, req.params.id, clampLimit(req.query.limit), cursor);
      return { data: page.rows.map(subscriptionView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/products/:id/subscriptions",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "createSubscription",
        tags: ["commerce"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: SubscriptionCreateRequest,
        response: { 201: dataEnvelope(Subscription), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const product = await findProduct(trx, req.params.id);
        if (!product) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
        const b = req.body;
        const f: SubscriptionFields = {
          customer_id: b.customer_id ?? null,
          external_system: b.external_system,
          external_id: b.external_id,
          status: b.status,
          current_period_start: ms(b.current_period_start),
          current_period_end: ms(b.current_period_end),
          cancel_at_period_end: b.cancel_at_period_end ?? false,
          canceled_at: b.canceled_at === undefined ? null : ms(b.canceled_at),
          metadata: b.metadata ?? {},
        };
        checkSubscriptionRules(f);
        await checkCustomer(trx, f.customer_id);
        await ensureUniqueExternal(trx, product.id, f, null);
        const row = await uniqueWrite(f, () => insertSubscription(trx, product.id, f, app.lk.clock.now()));
        await recordEvent(
          trx,
          managementEvent(req, "subscription.created", "subscription", row.id, {
            product_id: product.id,
            external_system: row.external_system,
            external_id: row.external_id,
            status: row.status,
          }),
        );
        return managementOutcome(req, reply, 201, subscriptionView(row));
      }),
  );

  app.get(
    "/subscriptions/:id",
    {
      config: { scope: "product:read" },
      schema: {
        operationId: "getSubscription",
        tags: ["commerce"],
        params: IdParams,
        response: { 200: dataEnvelope(Subscription), ...errorResponses(...READ_ERRORS) },
      },
    },
    async (req) => {
      const row = await findSubscription(app.lk.store.db, req.params.id);
      if (!row) throw new ApiError("NOT_FOUND", `subscription ${req.params.id} not found`);
      return { data: subscriptionView(row), meta: responseMeta(req) };
    },
  );

  app.patch(
    "/subscriptions/:id",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "updateSubscription",
        tags: ["commerce"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: SubscriptionUpdateRequest,
        response: { 200: dataEnvelope(Subscription), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockSubscription(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `subscription ${req.params.id} not found`);
        const b = req.body;
        const before = subscriptionFields(row);
        const status = b.status ?? before.status;
        const f: SubscriptionFields = {
          customer_id: b.customer_id === undefined ? before.customer_id : b.customer_id === "" ? null : b.customer_id,
          external_system: b.external_system ?? before.external_system,
          external_id: b.external_id ?? before.external_id,
          status,
          current_period_start: b.current_period_start === undefined ? before.current_period_start : ms(b.current_period_start),
          current_period_end: b.current_period_end === undefined ? before.current_period_end : ms(b.current_period_end),
          cancel_at_period_end: b.cancel_at_period_end ?? before.cancel_at_period_end,
          // Leaving the canceled status drops the cancellation time unless a new one is sent (which is then refused).
          canceled_at: b.canceled_at !== undefined ? ms(b.canceled_at) : status === "canceled" ? before.canceled_at : null,
          metadata: b.metadata ?? before.metadata,
        };
        const changed = changedKeys(before, f);
        if (changed.length === 0) return managementOutcome(req, reply, 200, subscriptionView(row));
        checkSubscriptionRules(f);
        if (changed.includes("customer_id")) await checkCustomer(trx, f.customer_id);
        if (changed.includes("external_system") || changed.includes("external_id")) await ensureUniqueExternal(trx, row.product_id, f, row.id);
        const next = await uniqueWrite(f, () => updateSubscription(trx, row, f, app.lk.clock.now()));
        await recordEvent(trx, managementEvent(req, "subscription.updated", "subscription", row.id, { product_id: row.product_id, fields: changed }));
        return managementOutcome(req, reply, 200, subscriptionView(next));
      }),
  );
};
