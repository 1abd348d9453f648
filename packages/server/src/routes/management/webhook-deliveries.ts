// /api/v1/webhooks/{id}/deliveries (beyond the contract): the delivery history of an endpoint and an
// operator's retry. Scope webhook:write like every webhook route. A retry makes the delivery due now
// whatever its status — a failed one gets a new round of 12 attempts, a delivered one is sent again
// (redelivery after the receiver lost data) — and records `webhook_delivery.retried`.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdempotencyHeader, IdParams, ListQuery, listEnvelope, StringEnum } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import {
  listEndpointDeliveries,
  lockEndpointDelivery,
  makeDeliveryDueNow,
  RESPONSE_BODY_LIMIT,
  WEBHOOK_DELIVERY_STATUSES,
  webhookDeliveryView,
} from "../../store/webhook-deliveries.js";
import { findWebhookEndpoint } from "../../store/webhook-endpoints.js";
import { MANAGEMENT_ERRORS, READ_ERRORS } from "./common.js";

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T, description: string) =>
  Type.Union([t, Type.Null()], { description });

export const WebhookDelivery = Type.Object({
  id: Type.String({ description: "whd_…; sent as X-Locksmith-Delivery-ID and in the body, the same on every attempt." }),
  webhook_id: Type.String(),
  event_sequence: Type.Integer({ description: "The audit event delivered (GET /api/v1/events)." }),
  event_type: Type.String(),
  status: StringEnum(WEBHOOK_DELIVERY_STATUSES, {
    description: "pending (waiting for its next attempt; also while the endpoint is inactive), delivered (a 2xx answer), failed (12 attempts of a round failed).",
  }),
  attempts: Type.Integer({ description: "Attempts made so far, over every round." }),
  next_attempt_at: Nullable(DateTime, "When the next attempt is due; null unless pending."),
  last_attempt_at: Nullable(DateTime, "When the last attempt was made; null before the first."),
  last_status_code: Nullable(Type.Integer(), "HTTP status of the last answer; null when there was none (refused, timeout, connection error)."),
  last_error: Nullable(Type.String(), "Why the last attempt failed (e.g. `HTTP 500`, `timeout: …`, `blocked: resolves to a private address`); null after a success."),
  last_response_body: Nullable(Type.String(), `The first ${RESPONSE_BODY_LIMIT} bytes of the last answer's body.`),
  delivered_at: Nullable(DateTime, "When a 2xx answer was last received."),
  created_at: DateTime,
});

const DeliveryListQuery = Type.Composite([ListQuery, Type.Object({ status: Type.Optional(StringEnum(WEBHOOK_DELIVERY_STATUSES)) })]);
const DeliveryParams = Type.Object({ id: Type.String(), delivery_id: Type.String() });

export const webhookDeliveryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/webhooks/:id/deliveries",
    {
      config: { scope: "webhook:write" },
      schema: {
        operationId: "listWebhookDeliveries",
        summary: "List an endpoint's webhook deliveries, newest first",
        tags: ["webhooks"],
        params: IdParams,
        querystring: DeliveryListQuery,
        response: { 200: listEnvelope(WebhookDelivery), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const limit = clampLimit(req.query.limit);
      const before = decodeCursor(req.query.cursor);
      if (!(await findWebhookEndpoint(db, req.params.id))) throw new ApiError("NOT_FOUND", `webhook endpoint ${req.params.id} not found`);
      const page = await listEndpointDeliveries(db, req.params.id, req.query.status, limit, before);
      return { data: page.rows.map(webhookDeliveryView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/webhooks/:id/deliveries/:delivery_id/retry",
    {
      config: { scope: "webhook:write", idempotency: "optional" },
      schema: {
        operationId: "retryWebhookDelivery",
        summary: "Make a webhook delivery due now: a failed one gets a new round of attempts, a delivered one is sent again",
        tags: ["webhooks"],
        params: DeliveryParams,
        headers: IdempotencyHeader(false),
        response: { 200: dataEnvelope(WebhookDelivery), ...errorResponses(...MANAGEMENT_ERRORS, "NOT_FOUND", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const { id, delivery_id } = req.params;
        if (!(await findWebhookEndpoint(trx, id))) throw new ApiError("NOT_FOUND", `webhook endpoint ${id} not found`);
        const row = await lockEndpointDelivery(trx, app.lk.store.engine, id, delivery_id);
        if (!row) throw new ApiError("NOT_FOUND", `delivery ${delivery_id} not found on webhook endpoint ${id}`);
        const next = await makeDeliveryDueNow(trx, row, app.lk.clock.now());
        await recordEvent(
          trx,
          managementEvent(req, "webhook_delivery.retried", "webhook_delivery", row.id, {
            webhook_id: id,
            event_sequence: Number(row.event_sequence),
            event_type: row.event_type,
            previous_status: row.status,
            attempts: Number(row.attempts),
          }),
        );
        return managementOutcome(req, reply, 200, webhookDeliveryView(next));
      }),
  );
};
