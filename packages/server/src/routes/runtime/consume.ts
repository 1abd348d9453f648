// POST /api/v1/license/consume — metered usage of a feature (Idempotency-Key required; event_id deduplicates).
//
// One transaction, under the license row lock:
//   1. a repeated event_id of this license answers exactly as its first (accepted) consume did — the
//      stored status and body, whatever the Idempotency-Key — and counts nothing;
//   2. the D2 decision with implicit binding (bindDevice, op "consume");
//   3. the feature: not assigned (or unknown), disabled, or its assignment expired → 403
//      FEATURE_NOT_ENTITLED;
//   4. the check-and-add: one conditional UPDATE of the assignment's counter that only succeeds
//      within the quota → else 409 FEATURE_QUOTA_EXCEEDED (+ `usage.quota_exceeded`, committed
//      with the denial); accepted → the license's total moves too, `usage.consumed`, and the signed
//      answer is stored with the event_id in consumption_events.
// A refused consume stores no event_id: the same event may be sent again after a top-up.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { normalizeBinding } from "../../domain/binding.js";
import { featureRefusal } from "../../domain/entitlement.js";
import type { Decision } from "../../domain/runtime-engine.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond } from "../../http/respond.js";
import { errorResponses, IdempotencyHeader, signedEnvelope } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import { bindDevice } from "../../store/bindings.js";
import { addFeatureUsage, addLicenseUsage, findConsumption, insertConsumption } from "../../store/consumption.js";
import { lockLicenseRow } from "../../store/licenses.js";
import { listFeatureAssignments } from "../../store/license-features.js";
import { boundSource, entitlementWith } from "./decide.js";
import { deniedOutcome, signedOutcome } from "./respond.js";
import { RUNTIME_ERRORS, RuntimeBindingRequest, RuntimeEntitlementResponseData } from "./schemas.js";

export const ConsumeLicenseRequest = Type.Object(
  {
    ...RuntimeBindingRequest.properties,
    feature_code: Type.String({ minLength: 1, maxLength: 255 }),
    amount: Type.Optional(Type.Integer({ format: "int64", minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: "Defaults to `1` when omitted." })),
    event_id: Type.String({ minLength: 1, maxLength: 255, description: "The client's id for this usage; a repeat for the same license is counted once." }),
  },
  { additionalProperties: false, description: "A runtime binding plus the feature, amount and event id of one metered use." },
);

const refusal = (code: Extract<Decision, { allow: false }>["code"], detail: string): Extract<Decision, { allow: false }> => ({ allow: false, code, detail });

export const consumeRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/consume",
    {
      config: { idempotency: "required" },
      schema: {
        operationId: "consumeLicense",
        tags: ["runtime"],
        summary: "Consume metered feature usage for an active bound license",
        headers: IdempotencyHeader(true),
        body: ConsumeLicenseRequest,
        response: {
          200: signedEnvelope(RuntimeEntitlementResponseData),
          ...errorResponses(
            ...RUNTIME_ERRORS,
            "IDEMPOTENCY_KEY_REQUIRED",
            "VERSION_NOT_ELIGIBLE",
            "FEATURE_NOT_ENTITLED",
            "NOT_FOUND",
            "ACTIVATION_LIMIT_EXCEEDED",
            "FEATURE_QUOTA_EXCEEDED",
            "IDEMPOTENCY_CONFLICT",
            "IDEMPOTENCY_IN_PROGRESS",
          ),
        },
      },
    },
    async (req, reply) => {
      const { feature_code: featureCode, amount = 1, event_id: eventId, ...fields } = req.body;
      const binding = normalizeBinding(fields);
      const lk = app.lk;
      const licenseId = req.runtime!.license.id;
      return commitAndRespond(req, reply, async (trx) => {
        const now = lk.clock.now();
        // The lock first, so that concurrent repeats of one event_id see the first one's row.
        const locked = await lockLicenseRow(trx, lk.store.engine, licenseId);
        if (!locked) throw new Error(`license ${licenseId} not found`);
        const first = await findConsumption(trx, licenseId, eventId);
        if (first) return { status: first.response_status, body: first.response_body };

        const actor = { actor_type: "license" as const, actor_id: licenseId, resource_type: "license", resource_id: licenseId, request_id: req.id, ip_address: req.ip, created_at: now };
        const denied = async (d: Extract<Decision, { allow: false }>) => {
          await recordEvent(trx, { ...actor, event_type: "license.validation_denied", metadata: { operation: "consume", code: d.code, feature_code: featureCode } });
          return deniedOutcome(req, d);
        };

        const r = await bindDevice(trx, lk.store.engine, {
          licenseId,
          op: "consume",
          binding,
          ip: req.ip,
          requestId: req.id,
          now,
          denialMetadata: { feature_code: featureCode },
          locked,
          seen: (deviceId) => lk.sideEffects.deviceSeen(deviceId, now, false, req.ip),
        });
        // bindDevice recorded the denial's event.
        if (!r.allowed) return deniedOutcome(req, r.decision);

        // Every assignment at once: the one consumed, and the rest for the answer's entitlement.
        const assignments = await listFeatureAssignments(trx, licenseId);
        const assignment = assignments.find((a) => a.code === featureCode);
        const why = featureRefusal(featureCode, assignment, now);
        if (!assignment || why) return denied(refusal("FEATURE_NOT_ENTITLED", why ?? `field feature_code: feature ${featureCode} is not entitled`));

        const usage = {
          feature_id: assignment.feature_id,
          feature_code: featureCode,
          amount,
          event_id: eventId,
          device_id: r.device.id,
        };
        if (assignment.total_consumptions + amount > Number.MAX_SAFE_INTEGER || r.license.total_consumptions + amount > Number.MAX_SAFE_INTEGER) {
          throw new ApiError("VALIDATION_ERROR", `field amount: the counter would pass ${Number.MAX_SAFE_INTEGER}`);
        }
        const counted = await addFeatureUsage(trx, licenseId, assignment.feature_id, amount, now);
        if (!counted) {
          const max = assignment.max_consumptions ?? 0;
          await recordEvent(trx, {
            ...actor,
            event_type: "usage.quota_exceeded",
            metadata: { ...usage, total_consumptions: assignment.total_consumptions, max_consumptions: max },
          });
          const left = Math.max(max - assignment.total_consumptions, 0);
          return deniedOutcome(req, refusal("FEATURE_QUOTA_EXCEEDED", `field amount: ${amount} would pass the quota of feature ${featureCode} (${left} of ${max} left)`));
        }
        const licenseTotal = await addLicenseUsage(trx, licenseId, amount, now);
        await recordEvent(trx, {
          ...actor,
          event_type: "usage.consumed",
          metadata: {
            ...usage,
            total_consumptions: counted.total_consumptions,
            ...(counted.max_consumptions !== null
              ? { max_consumptions: counted.max_consumptions, remaining: Math.max(counted.max_consumptions - counted.total_consumptions, 0) }
              : {}),
            license_total_consumptions: licenseTotal,
          },
        });
        // The entitlement shows this consume: the assignment's counter as the UPDATE returned it.
        const entitlement = entitlementWith(
          boundSource(r, now),
          assignments.map((a) => (a === assignment ? { ...a, ...counted } : a)),
        );
        const outcome = signedOutcome(req, 200, entitlement);
        await insertConsumption(trx, {
          license_id: licenseId,
          event_id: eventId,
          feature_id: assignment.feature_id,
          device_id: r.device.id,
          amount,
          response_status: outcome.status,
          response_body: outcome.body,
          created_at: now,
        });
        return outcome;
      });
    },
  );
};
