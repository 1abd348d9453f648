// /api/v1/api-keys: management tokens (NOTES §3, D9). Admin only. The token is shown once, on create
// and on rotate; only its keyed hash is stored. Revoke and rotate go beyond the contract.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { parseCidr } from "../../http/cidr.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome, noContentOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope } from "../../http/schemas.js";
import { isScope, SCOPES } from "../../http/scopes.js";
import { newManagementToken } from "../../ids.js";
import { apiKeyView, insertApiKey, listApiKeys, lockApiKey, revokeApiKey, rotateApiKeyToken } from "../../store/api-keys.js";
import { recordEvent } from "../../store/audit-events.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { MANAGEMENT_ERRORS, Name, READ_ERRORS } from "./common.js";

const SCOPE_LIST = `Known scopes: ${SCOPES.join(", ")}.`;

export const ApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  key_prefix: Type.String({ description: "The first characters of the token, to recognise it; never the token." }),
  scopes: Type.Array(Type.String(), { description: SCOPE_LIST }),
  allowed_cidrs: Type.Array(Type.String()),
  is_active: Type.Boolean({ description: "False once the key is deactivated or revoked." }),
  expires_at: Type.Optional(DateTime),
  last_used_at: Type.Optional(DateTime),
  revoked_at: Type.Optional(Type.String({ format: "date-time", description: "When the key was revoked (DELETE /api-keys/{id}); absent while it is not." })),
  created_at: DateTime,
});

const ApiKeyCreateResponse = Type.Object({
  api_key: ApiKey,
  token: Type.String({ description: "The plaintext token (lkm_…), shown only in this answer." }),
});

const ApiKeyCreateRequest = Type.Object(
  {
    name: Name,
    scopes: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        minItems: 1,
        maxItems: 32,
        description: `Defaults to ["admin"] when omitted. ${SCOPE_LIST} An unknown scope is 422.`,
      }),
    ),
    allowed_cidrs: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        maxItems: 100,
        description: "IPv4/IPv6 addresses or CIDRs the token may be used from; empty or omitted means anywhere.",
      }),
    ),
    expires_at: Type.Optional(Type.String({ format: "date-time", description: "Must be in the future." })),
  },
  { additionalProperties: false },
);

interface CreateInput {
  scopes?: string[];
  allowed_cidrs?: string[];
  expires_at?: string;
}

/** The business rules of a create body (422 naming the field and the entry). */
function checkCreate(body: CreateInput, now: number): { scopes: string[]; allowedCidrs: string[]; expiresAt: number | null } {
  const scopes = [...new Set(body.scopes ?? ["admin"])];
  (body.scopes ?? []).forEach((s, i) => {
    if (!isScope(s)) throw new ApiError("VALIDATION_ERROR", `field scopes[${i}]: unknown scope "${s}". ${SCOPE_LIST}`);
  });
  const allowedCidrs = (body.allowed_cidrs ?? []).map((c) => c.trim());
  allowedCidrs.forEach((c, i) => {
    if (!parseCidr(c)) throw new ApiError("VALIDATION_ERROR", `field allowed_cidrs[${i}]: "${c}" is not an IPv4 or IPv6 address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)`);
  });
  let expiresAt: number | null = null;
  if (body.expires_at !== undefined) {
    expiresAt = Date.parse(body.expires_at);
    if (!Number.isFinite(expiresAt)) throw new ApiError("VALIDATION_ERROR", "field expires_at: must be an RFC 3339 date-time");
    if (expiresAt <= now) throw new ApiError("VALIDATION_ERROR", "field expires_at: must be in the future");
  }
  return { scopes, allowedCidrs: [...new Set(allowedCidrs)], expiresAt };
}

export const apiKeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/api-keys",
    {
      config: { scope: "admin" },
      schema: {
        operationId: "listAPIKeys",
        tags: ["api-keys"],
        querystring: ListQuery,
        response: { 200: listEnvelope(ApiKey), ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const page = await listApiKeys(app.lk.store.db, clampLimit(req.query.limit), decodeCursor(req.query.cursor));
      return { data: page.rows.map(apiKeyView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/api-keys",
    {
      config: { scope: "admin", idempotency: "optional" },
      schema: {
        operationId: "createAPIKey",
        tags: ["api-keys"],
        headers: IdempotencyHeader(false),
        body: ApiKeyCreateRequest,
        response: { 201: dataEnvelope(ApiKeyCreateResponse), ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_JSON", "VALIDATION_ERROR", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const now = app.lk.clock.now();
        const input = checkCreate(req.body, now);
        const token = newManagementToken();
        const row = await insertApiKey(
          trx,
          app.lk.hasher,
          { name: req.body.name, token, scopes: input.scopes, allowedCidrs: input.allowedCidrs, expiresAt: input.expiresAt },
          now,
        );
        const view = apiKeyView(row);
        await recordEvent(
          trx,
          managementEvent(req, "api_key.created", "api_key", row.id, {
            name: row.name,
            scopes: view.scopes,
            allowed_cidrs: view.allowed_cidrs,
            ...(view.expires_at ? { expires_at: view.expires_at } : {}),
          }),
        );
        return managementOutcome(req, reply, 201, { api_key: view, token });
      }),
  );

  app.delete(
    "/api-keys/:id",
    {
      config: { scope: "admin", idempotency: "optional" },
      schema: {
        operationId: "revokeAPIKey",
        tags: ["api-keys"],
        description: "Revokes the key: it is refused (401) from the next request on. A key may revoke itself. Revoking a revoked key changes nothing (204).",
        params: IdParams,
        headers: IdempotencyHeader(false),
        response: {
          204: Type.Null({ description: "Key revoked; empty body." }),
          ...errorResponses(...READ_ERRORS, "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS"),
        },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockApiKey(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `api key ${req.params.id} not found`);
        if (row.revoked_at !== null) return noContentOutcome(reply);
        await revokeApiKey(trx, row, app.lk.clock.now());
        await recordEvent(trx, managementEvent(req, "api_key.revoked", "api_key", row.id, { name: row.name, self: row.id === req.principal?.id }));
        return noContentOutcome(reply);
      }),
  );

  app.post(
    "/api-keys/:id/rotate",
    {
      config: { scope: "admin", idempotency: "optional" },
      schema: {
        operationId: "rotateAPIKey",
        tags: ["api-keys"],
        description: "Gives the key a new token, shown once in this answer; the old token is refused from the next request on. 409 when the key is revoked.",
        params: IdParams,
        headers: IdempotencyHeader(false),
        response: {
          200: dataEnvelope(ApiKeyCreateResponse),
          ...errorResponses(...READ_ERRORS, "CONFLICT", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS"),
        },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockApiKey(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `api key ${req.params.id} not found`);
        if (row.revoked_at !== null) throw new ApiError("CONFLICT", `api key ${row.id} is revoked; create a new key instead`);
        const token = newManagementToken();
        const rotated = await rotateApiKeyToken(trx, app.lk.hasher, row, token, app.lk.clock.now());
        await recordEvent(trx, managementEvent(req, "api_key.rotated", "api_key", row.id, { name: row.name, self: row.id === req.principal?.id }));
        return managementOutcome(req, reply, 200, { api_key: apiKeyView(rotated), token });
      }),
  );
};
