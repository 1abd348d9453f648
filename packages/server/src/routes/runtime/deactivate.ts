// POST /api/v1/license/deactivate — releases a binding (Idempotency-Key required; D12 limits).
// The D2 checks run as for every runtime call; a fingerprint with no active binding is 404. The
// answer is signed (D4), denials too.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { normalizeBinding } from "../../domain/binding.js";
import { commitAndRespond } from "../../http/respond.js";
import { DateTime, errorResponses, IdempotencyHeader, signedEnvelope } from "../../http/schemas.js";
import { releaseBinding } from "../../store/deactivation.js";
import { LicenseType } from "../management/policies.js";
import { deniedOutcome, signedOutcome } from "./respond.js";
import { RUNTIME_ERRORS, RuntimeBindingRequest } from "./schemas.js";

/** The contract's DeactivationResponseData, in its property order (the signed bytes follow it). */
export const DeactivationResponseData = Type.Object({
  license_id: Type.String(),
  status: Type.String(),
  license_type: LicenseType,
  entitlement_version: Type.Integer(),
  issued_at: DateTime,
  device_id: Type.String(),
  expires_at: Type.Optional(DateTime),
});

export const deactivateRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/deactivate",
    {
      config: { idempotency: "required" },
      schema: {
        operationId: "deactivateLicense",
        tags: ["runtime"],
        summary: "Deactivate a bound license device",
        description:
          "Releases the seat of the binding. 404 NOT_FOUND when the binding is not active on this license; 409 DEACTIVATION_LIMIT_EXCEEDED when the policy's max_deactivations within deactivation_window_days is used up (D12).",
        headers: IdempotencyHeader(true),
        body: RuntimeBindingRequest,
        response: {
          200: signedEnvelope(DeactivationResponseData),
          ...errorResponses(
            ...RUNTIME_ERRORS,
            "IDEMPOTENCY_KEY_REQUIRED",
            "BAD_REQUEST",
            "NOT_FOUND",
            "DEACTIVATION_LIMIT_EXCEEDED",
            "IDEMPOTENCY_CONFLICT",
            "IDEMPOTENCY_IN_PROGRESS",
          ),
        },
      },
    },
    async (req, reply) => {
      const binding = normalizeBinding(req.body);
      const lk = app.lk;
      return commitAndRespond(req, reply, async (trx) => {
        const now = lk.clock.now();
        const r = await releaseBinding(trx, lk.store.engine, { licenseId: req.runtime!.license.id, binding, ip: req.ip, requestId: req.id, now });
        if (!r.released) return deniedOutcome(req, r.decision);
        return signedOutcome(req, 200, {
          license_id: r.license.id,
          status: r.status,
          license_type: r.policy.license_type,
          entitlement_version: r.license.entitlement_version,
          issued_at: new Date(now).toISOString(),
          device_id: r.device.id,
          ...(r.license.expires_at !== null ? { expires_at: new Date(r.license.expires_at).toISOString() } : {}),
        });
      });
    },
  );
};
