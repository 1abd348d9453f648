// /api/v1/licenses/{id}/renew and /transfer (NOTES §11). Both require an Idempotency-Key.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { checkRenewalInput } from "../../domain/license-renewal.js";
import { resolveOrigin } from "../../domain/license-origin.js";
import { managementEvent } from "../../http/actor.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader } from "../../http/schemas.js";
import { renewLicense, type TransferInput, transferLicense } from "../../store/license-actions.js";
import { lockLicense } from "../../store/licenses.js";
import { licenseView } from "../../store/licenses.js";
import { WRITE_ERRORS } from "./common.js";
import { License } from "./licenses.js";

const Ref = Type.String({ minLength: 1, maxLength: 64 });

const LicenseRenewRequest = Type.Object(
  {
    expires_at: Type.Optional(DateTime),
    extend_by_days: Type.Optional(Type.Integer({ minimum: 1 })),
    order_id: Type.Optional(Ref),
    subscription_id: Type.Optional(Ref),
  },
  { additionalProperties: false, description: "Exactly one of expires_at or extend_by_days." },
);

const LicenseTransferRequest = Type.Object(
  {
    customer_id: Type.Optional(Type.String({ maxLength: 64, description: "An empty string clears the linked customer." })),
    customer_email: Type.Optional(Type.String({ maxLength: 320, description: "An empty string clears it." })),
    customer_name: Type.Optional(Type.String({ maxLength: 200, description: "An empty string clears it." })),
    reset_devices: Type.Optional(Type.Boolean({ description: "Release every active device (status reset)." })),
  },
  { additionalProperties: false, description: "At least one ownership field, or reset_devices: true." },
);

// The same address rule ajv-formats applies to `format: email` on license create.
const EMAIL = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i;

const orNull = (v: string | undefined): string | null | undefined => (v === undefined ? undefined : v === "" ? null : v);

export const licenseActionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/licenses/:id/renew",
    {
      config: { scope: "license:write", idempotency: "required" },
      schema: {
        operationId: "renewLicense",
        summary: "Renew or extend a time_limited, subscription or trial license (a suspended license stays suspended)",
        tags: ["licenses"],
        params: IdParams,
        headers: IdempotencyHeader(true),
        body: LicenseRenewRequest,
        response: { 200: dataEnvelope(License), ...errorResponses(...WRITE_ERRORS, "IDEMPOTENCY_KEY_REQUIRED", "NOT_FOUND") },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const input = { expires_at: b.expires_at === undefined ? undefined : Date.parse(b.expires_at), extend_by_days: b.extend_by_days };
      checkRenewalInput(input);
      return commitAndRespond(req, reply, async (trx) => {
        const locked = await lockLicense(trx, app.lk.store.engine, req.params.id);
        if (!locked) throw new ApiError("NOT_FOUND", `license ${req.params.id} not found`);
        // The renewal source is validated and recorded in the event; the stored linkage is not rewritten.
        const origin =
          b.order_id !== undefined || b.subscription_id !== undefined
            ? await resolveOrigin(trx, { productId: locked.license.product_id, orderId: b.order_id, subscriptionId: b.subscription_id })
            : null;
        const event = managementEvent(req, "license.renewed", "license", locked.license.id, origin ? { ...origin } : {});
        const updated = await renewLicense(trx, locked, input, event);
        return managementOutcome(req, reply, 200, licenseView(updated, locked.policy.grace_period_days, event.created_at));
      });
    },
  );

  app.post(
    "/licenses/:id/transfer",
    {
      config: { scope: "license:write", idempotency: "required" },
      schema: {
        operationId: "transferLicense",
        summary: "Move a license to another assignee; counts against the policy's max_transfers (0 = unlimited)",
        tags: ["licenses"],
        params: IdParams,
        headers: IdempotencyHeader(true),
        body: LicenseTransferRequest,
        response: {
          200: dataEnvelope(License),
          ...errorResponses(...WRITE_ERRORS, "IDEMPOTENCY_KEY_REQUIRED", "NOT_FOUND", "TRANSFER_LIMIT_EXCEEDED"),
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (b.customer_id === undefined && b.customer_email === undefined && b.customer_name === undefined && b.reset_devices !== true) {
        throw new ApiError("VALIDATION_ERROR", "field customer_id: provide at least one of customer_id, customer_email, customer_name, or reset_devices: true");
      }
      if (b.customer_email !== undefined && b.customer_email !== "" && !EMAIL.test(b.customer_email)) {
        throw new ApiError("VALIDATION_ERROR", "field customer_email: must be a valid email (or an empty string to clear it)");
      }
      const input: TransferInput = {
        customer_id: orNull(b.customer_id),
        customer_email: orNull(b.customer_email),
        customer_name: orNull(b.customer_name),
        reset_devices: b.reset_devices === true,
      };
      return commitAndRespond(req, reply, async (trx) => {
        const locked = await lockLicense(trx, app.lk.store.engine, req.params.id);
        if (!locked) throw new ApiError("NOT_FOUND", `license ${req.params.id} not found`);
        const event = managementEvent(req, "license.transferred", "license", locked.license.id);
        const updated = await transferLicense(trx, locked, input, event);
        return managementOutcome(req, reply, 200, licenseView(updated, locked.policy.grace_period_days, event.created_at));
      });
    },
  );
};
