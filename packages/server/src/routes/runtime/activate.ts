// POST /api/v1/license/activate — binds a device or container explicitly (Idempotency-Key required).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { normalizeBinding } from "../../domain/binding.js";
import { commitAndRespond } from "../../http/respond.js";
import { errorResponses, IdempotencyHeader, signedEnvelope } from "../../http/schemas.js";
import { bindDevice } from "../../store/bindings.js";
import { boundEntitlement } from "./decide.js";
import { deniedOutcome, signedOutcome } from "./respond.js";
import { RUNTIME_ERRORS, RuntimeBindingRequest, RuntimeEntitlementResponseData } from "./schemas.js";

export const activateRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/activate",
    {
      config: { idempotency: "required" },
      schema: {
        operationId: "activateLicense",
        tags: ["runtime"],
        summary: "Activate a license for a hardware or container binding",
        headers: IdempotencyHeader(true),
        body: RuntimeBindingRequest,
        response: {
          200: signedEnvelope(RuntimeEntitlementResponseData),
          ...errorResponses(...RUNTIME_ERRORS, "IDEMPOTENCY_KEY_REQUIRED", "ACTIVATION_LIMIT_EXCEEDED", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS"),
        },
      },
    },
    async (req, reply) => {
      const binding = normalizeBinding(req.body);
      const lk = app.lk;
      return commitAndRespond(req, reply, async (trx) => {
        const now = lk.clock.now();
        const r = await bindDevice(trx, lk.store.engine, {
          licenseId: req.runtime!.license.id,
          op: "activate",
          binding,
          ip: req.ip,
          requestId: req.id,
          now,
          seen: (deviceId) => lk.sideEffects.deviceSeen(deviceId, now, false, req.ip),
        });
        if (!r.allowed) return deniedOutcome(req, r.decision);
        return signedOutcome(req, 200, await boundEntitlement(trx, r, now));
      });
    },
  );
};
