// POST /api/v1/license/check — a fresh signed entitlement that changes no state (no binding, no
// validation stamps); it only adds to the batched hourly call counter (D7). An unbound fingerprint is
// DEVICE_NOT_ACTIVATED.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { errorResponses, signedEnvelope } from "../../http/schemas.js";
import { decideReadOnly, readOnlyEntitlement } from "./decide.js";
import { refuse, sendSigned } from "./respond.js";
import { RUNTIME_ERRORS, RuntimeBindingRequest, RuntimeEntitlementResponseData } from "./schemas.js";

export const checkRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/check",
    {
      config: { cachedState: true },
      schema: {
        operationId: "checkLicense",
        tags: ["runtime"],
        summary: "Check current entitlements without mutating validation timestamps",
        body: RuntimeBindingRequest,
        response: { 200: signedEnvelope(RuntimeEntitlementResponseData), ...errorResponses(...RUNTIME_ERRORS, "DEVICE_NOT_ACTIVATED", "NOT_FOUND") },
      },
    },
    async (req, reply) => {
      const { license, policy, device, decision: d, now, version } = await decideReadOnly(req, "check", { cached: true });
      if (!d.allow) refuse(req, "check", d);
      if (!device) throw new Error("an allowed check always has a bound device");
      req.server.lk.sideEffects.callCounted(license.id, "check", now);
      return sendSigned(req, reply, await readOnlyEntitlement(req, { license, policy, status: d.status, deviceId: device.id, now, version }));
    },
  );
};
