// /api/v1/webhooks: webhook endpoints (NOTES §17, D6). Every route needs webhook:write (there is no
// webhook:read). The secret is shown only when it is set: on create and when PATCH sets or rotates it.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { secretsEqual } from "../../crypto/constant-time.js";
import { EVENT_TYPES } from "../../domain/event-types.js";
import { urlForAudit, webhookUrlProblem } from "../../domain/webhook-url.js";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome, noContentOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import type { WebhookEndpointRow } from "../../store/schema.js";
import { newWebhookSecret } from "../../ids.js";
import {
  deleteWebhookEndpoint,
  findWebhookEndpoint,
  findWebhookEndpointByNameAndUrl,
  insertWebhookEndpoint,
  listWebhookEndpoints,
  lockWebhookEndpoint,
  lockWebhookEndpointNames,
  openWebhookSecret,
  updateWebhookEndpoint,
  type WebhookEndpointPatch,
  webhookEndpointView,
} from "../../store/webhook-endpoints.js";
import { MANAGEMENT_ERRORS, Name, READ_ERRORS, WRITE_ERRORS } from "./common.js";

export const WebhookEndpoint = Type.Object({
  id: Type.String(),
  name: Type.String(),
  url: Type.String({ format: "uri" }),
  secret_prefix: Type.String({ description: "The first characters of the current secret; the full secret is shown only when it is set." }),
  event_types: Type.Array(Type.String(), { description: "Empty means the endpoint receives all events." }),
  is_active: Type.Boolean(),
  last_delivery_at: Type.Optional(DateTime),
  created_at: DateTime,
  updated_at: DateTime,
});

const WebhookEndpointWithSecret = Type.Object({
  webhook: WebhookEndpoint,
  secret: Type.String({ description: "The shared signing secret, shown only in this answer." }),
});

const Url = Type.String({ format: "uri", maxLength: 2048, description: "Absolute http(s) URL; loopback, private and link-local targets need LICENSEKIT_WEBHOOK_ALLOW_PRIVATE=true." });
const EventTypes = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
  maxItems: 100,
  description: "Event types to deliver (see docs/events.md); an empty list means all events.",
});
const Secret = Type.String({
  minLength: 16,
  maxLength: 256,
  pattern: "^[\\x21-\\x7E]+$",
  description: "16 to 256 visible ASCII characters. When omitted on create, the server generates whsec_ + 32 base62 characters.",
});

const WebhookEndpointCreateRequest = Type.Object(
  {
    name: Name,
    url: Url,
    event_types: Type.Optional(EventTypes),
    secret: Type.Optional(Secret),
    is_active: Type.Optional(Type.Boolean({ description: "Default true." })),
  },
  { additionalProperties: false },
);

const WebhookEndpointUpdateRequest = Type.Object(
  {
    name: Type.Optional(Name),
    url: Type.Optional(Url),
    event_types: Type.Optional(EventTypes),
    secret: Type.Optional(Secret),
    rotate_secret: Type.Optional(Type.Boolean({ description: "true generates a new secret and answers it once; cannot be combined with secret." })),
    is_active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

function checkUrl(url: string, allowPrivate: boolean): void {
  const problem = webhookUrlProblem(url, allowPrivate);
  if (problem) throw new ApiError("VALIDATION_ERROR", `field url: ${problem}`);
}

/** Known event types, de-duplicated in the order given; 422 naming the first unknown one. */
function checkEventTypes(types: string[]): string[] {
  types.forEach((t, i) => {
    if (!Object.hasOwn(EVENT_TYPES, t)) throw new ApiError("VALIDATION_ERROR", `field event_types[${i}]: unknown event type "${t}" (see docs/events.md)`);
  });
  return [...new Set(types)];
}

const duplicate = (other: WebhookEndpointRow) => new ApiError("CONFLICT", `fields name and url: webhook endpoint ${other.id} already has this name and url`);

export const webhookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const secretKey = app.lk.webhookSecretKey;
  const allowPrivate = () => app.lk.config.webhookAllowPrivate;

  app.get(
    "/webhooks",
    {
      config: { scope: "webhook:write" },
      schema: {
        operationId: "listWebhookEndpoints",
        tags: ["webhooks"],
        querystring: ListQuery,
        response: { 200: listEnvelope(WebhookEndpoint), ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const page = await listWebhookEndpoints(app.lk.store.db, clampLimit(req.query.limit), decodeCursor(req.query.cursor));
      return { data: page.rows.map(webhookEndpointView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/webhooks",
    {
      config: { scope: "webhook:write", idempotency: "optional" },
      schema: {
        operationId: "createWebhookEndpoint",
        tags: ["webhooks"],
        headers: IdempotencyHeader(false),
        body: WebhookEndpointCreateRequest,
        response: { 201: dataEnvelope(WebhookEndpointWithSecret), ...errorResponses(...WRITE_ERRORS) },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const body = req.body;
        checkUrl(body.url, allowPrivate());
        const eventTypes = checkEventTypes(body.event_types ?? []);
        await lockWebhookEndpointNames(trx, app.lk.store.engine);
        const other = await findWebhookEndpointByNameAndUrl(trx, body.name, body.url);
        if (other) throw duplicate(other);
        const secret = body.secret ?? newWebhookSecret();
        const row = await insertWebhookEndpoint(
          trx,
          secretKey,
          { name: body.name, url: body.url, eventTypes, secret, isActive: body.is_active ?? true },
          app.lk.clock.now(),
        );
        await recordEvent(
          trx,
          managementEvent(req, "webhook_endpoint.created", "webhook_endpoint", row.id, {
            name: row.name,
            url: urlForAudit(row.url),
            event_types: eventTypes,
            is_active: row.is_active === 1,
            secret_generated: body.secret === undefined,
          }),
        );
        return managementOutcome(req, reply, 201, { webhook: webhookEndpointView(row), secret });
      }),
  );

  app.get(
    "/webhooks/:id",
    {
      config: { scope: "webhook:write" },
      schema: {
        operationId: "getWebhookEndpoint",
        tags: ["webhooks"],
        params: IdParams,
        response: { 200: dataEnvelope(WebhookEndpoint), ...errorResponses(...READ_ERRORS) },
      },
    },
    async (req) => {
      const row = await findWebhookEndpoint(app.lk.store.db, req.params.id);
      if (!row) throw new ApiError("NOT_FOUND", `webhook endpoint ${req.params.id} not found`);
      return { data: webhookEndpointView(row), meta: responseMeta(req) };
    },
  );

  app.patch(
    "/webhooks/:id",
    {
      config: { scope: "webhook:write", idempotency: "optional" },
      schema: {
        operationId: "updateWebhookEndpoint",
        tags: ["webhooks"],
        description: "Every field optional. Setting `secret` or `rotate_secret: true` answers `{webhook, secret}`; otherwise the endpoint.",
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: WebhookEndpointUpdateRequest,
        response: { 200: dataEnvelope(Type.Union([WebhookEndpoint, WebhookEndpointWithSecret])), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const body = req.body;
        const row = await lockWebhookEndpoint(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `webhook endpoint ${req.params.id} not found`);
        if (body.rotate_secret === true && body.secret !== undefined) {
          throw new ApiError("VALIDATION_ERROR", "field rotate_secret: cannot be combined with secret; send one of them");
        }
        if (body.url !== undefined) checkUrl(body.url, allowPrivate());
        const patch: WebhookEndpointPatch = {};
        const changed: string[] = [];
        if (body.name !== undefined && body.name !== row.name) {
          patch.name = body.name;
          changed.push("name");
        }
        if (body.url !== undefined && body.url !== row.url) {
          patch.url = body.url;
          changed.push("url");
        }
        if (body.event_types !== undefined) {
          const types = checkEventTypes(body.event_types);
          if (JSON.stringify(types) !== row.event_types) {
            patch.eventTypes = types;
            changed.push("event_types");
          }
        }
        if (body.is_active !== undefined && (body.is_active ? 1 : 0) !== row.is_active) {
          patch.isActive = body.is_active;
          changed.push("is_active");
        }
        const newSecret = body.rotate_secret === true ? newWebhookSecret() : body.secret;
        if (newSecret !== undefined && !secretsEqual(newSecret, openWebhookSecret(secretKey, row))) {
          patch.secret = newSecret;
          changed.push("secret");
        }
        let next = row;
        if (changed.length > 0) {
          if (patch.name !== undefined || patch.url !== undefined) {
            await lockWebhookEndpointNames(trx, app.lk.store.engine);
            const other = await findWebhookEndpointByNameAndUrl(trx, patch.name ?? row.name, patch.url ?? row.url, row.id);
            if (other) throw duplicate(other);
          }
          next = await updateWebhookEndpoint(trx, secretKey, row, patch, app.lk.clock.now());
          await recordEvent(
            trx,
            managementEvent(req, "webhook_endpoint.updated", "webhook_endpoint", row.id, {
              fields: changed,
              ...(patch.url !== undefined ? { url: urlForAudit(patch.url) } : {}),
              ...(patch.secret !== undefined ? { secret_rotated: true, secret_generated: body.rotate_secret === true } : {}),
            }),
          );
        }
        const view = webhookEndpointView(next);
        return managementOutcome(req, reply, 200, newSecret !== undefined ? { webhook: view, secret: newSecret } : view);
      }),
  );

  app.delete(
    "/webhooks/:id",
    {
      config: { scope: "webhook:write", idempotency: "optional" },
      schema: {
        operationId: "deleteWebhookEndpoint",
        tags: ["webhooks"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        response: {
          204: Type.Null({ description: "Webhook endpoint deleted; empty body." }),
          ...errorResponses(...READ_ERRORS, "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS"),
        },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockWebhookEndpoint(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `webhook endpoint ${req.params.id} not found`);
        await deleteWebhookEndpoint(trx, row.id);
        await recordEvent(trx, managementEvent(req, "webhook_endpoint.deleted", "webhook_endpoint", row.id, { name: row.name, url: urlForAudit(row.url) }));
        return noContentOutcome(reply);
      }),
  );
};
