// POST /api/v1/license/validate — the recurring check. Read-only when the device is already bound
// (stamps are batched); binds implicitly when the policy has a free slot (D2).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { commitAndRespond } from "../../http/respond.js";
import { errorResponses, signedEnvelope } from "../../http/schemas.js";
import { bindDevice } from "../../store/bindings.js";
import { unmarkReadOnly } from "../../jobs/runtime-invalidation.js";
import { boundEntitlement, decideReadOnly, readOnlyEntitlement } from "./decide.js";
import { deniedOutcome, refuse, sendSigned, signedOutcome } from "./respond.js";
import { RUNTIME_ERRORS, RuntimeBindingRequest, RuntimeEntitlementResponseData } from "./schemas.js";

export const validateRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/validate",
    {
      config: { idempotency: "optional", cachedState: true },
      schema: {
        operationId: "validateLicense",
        tags: ["runtime"],
        summary: "Validate a bound license and refresh validation timestamps",
        body: RuntimeBindingRequest,
        response: { 200: signedEnvelope(RuntimeEntitlementResponseData), ...errorResponses(...RUNTIME_ERRORS, "ACTIVATION_LIMIT_EXCEEDED", "NOT_FOUND") },
      },
    },
    async (req, reply) => {
      const { binding, license, policy, device, decision: d, now, version } = await decideReadOnly(req, "validate", { cached: true });
      if (d.allow && d.binds === "existing" && device) {
        app.lk.sideEffects.deviceSeen(device.id, now, true, req.ip);
        app.lk.sideEffects.callCounted(license.id, "validate", now);
        return sendSigned(req, reply, await readOnlyEntitlement(req, { license, policy, status: d.status, deviceId: device.id, now, version }));
      }
      // Denials that do not depend on seat counts are final here; anything about binding a new
      // device is decided again under the license lock.
      if (!d.allow && d.code !== "ACTIVATION_LIMIT_EXCEEDED") refuse(req, "validate", d);
      // Binding writes: this request invalidates its license when it answers.
      unmarkReadOnly(req);
      return commitAndRespond(req, reply, async (trx) => {
        const r = await bindDevice(trx, app.lk.store.engine, { licenseId: license.id, op: "validate", binding, ip: req.ip, requestId: req.id, now });
        if (!r.allowed) return deniedOutcome(req, r.decision);
        app.lk.sideEffects.callCounted(license.id, "validate", now);
        return signedOutcome(req, 200, await boundEntitlement(trx, r, now));
      });
    },
  );
};
