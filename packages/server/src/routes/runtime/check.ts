// POST /api/v1/license/check — a fresh signed entitlement that never writes anything (not even
// validation stamps); an unbound fingerprint is DEVICE_NOT_ACTIVATED.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { normalizeBinding } from "../../domain/binding.js";
import { entitlementData } from "../../domain/entitlement.js";
import { decide } from "../../domain/runtime-engine.js";
import { errorResponses, signedEnvelope } from "../../http/schemas.js";
import { findDeviceByBinding } from "../../store/devices.js";
import { refuse, sendSigned } from "./respond.js";
import { RUNTIME_ERRORS, RuntimeBindingRequest, RuntimeEntitlementResponseData } from "./schemas.js";

export const checkRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/check",
    {
      schema: {
        operationId: "checkLicense",
        tags: ["runtime"],
        summary: "Check current entitlements without mutating validation timestamps",
        body: RuntimeBindingRequest,
        response: { 200: signedEnvelope(RuntimeEntitlementResponseData), ...errorResponses(...RUNTIME_ERRORS, "DEVICE_NOT_ACTIVATED") },
      },
    },
    async (req, reply) => {
      const binding = normalizeBinding(req.body);
      const { license, policy } = req.runtime!;
      const now = app.lk.clock.now();
      const device = await findDeviceByBinding(app.lk.store.db, license.id, binding.key);
      const d = decide({ op: "check", now, license, policy, binding, device: device ?? null, activeContainerCount: 0 });
      if (!d.allow || !device) refuse(req, "check", d.allow ? { allow: false, code: "DEVICE_NOT_ACTIVATED", detail: "no active binding for this device" } : d);
      return sendSigned(
        req,
        reply,
        entitlementData({ license, policy, status: d.status, deviceId: device.id, now, appVersion: binding.request.app_version, features: [] }),
      );
    },
  );
};
