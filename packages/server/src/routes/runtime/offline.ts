// POST /api/v1/license/offline — an encrypted, signed offline envelope for a bound device (D5,
// docs/offline-format.md). The D2 checks run first; the device must already hold an active binding
// (an envelope never creates or consumes a seat: DEVICE_NOT_ACTIVATED otherwise); then the policy
// must allow offline use (OFFLINE_NOT_ALLOWED). The answer `{data: {kid, salt, nonce, ciphertext},
// meta}` is not signed itself: the signature is inside the encrypted payload.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { DAY_MS } from "../../clock.js";
import { sealOffline } from "../../crypto/offline-envelope.js";
import { type Binding, normalizeBinding } from "../../domain/binding.js";
import { responseMeta } from "../../http/envelope.js";
import { commitAndRespond } from "../../http/respond.js";
import { dataEnvelope, errorResponses, IdempotencyHeader } from "../../http/schemas.js";
import { normalizeLicenseKey } from "../../ids.js";
import { recordEvent } from "../../store/audit-events.js";
import { bindingSummary } from "../../store/bindings.js";
import { decideLocked, recordDenial } from "../../store/deactivation.js";
import { entitlementFor } from "./decide.js";
import { deniedOutcome } from "./respond.js";
import { RUNTIME_ERRORS, RuntimeBindingRequest } from "./schemas.js";

export const OfflineEnvelope = Type.Object({
  kid: Type.String({ description: "kid of the Ed25519 key that signed the inner payload; also the AES-GCM associated data." }),
  salt: Type.String({ description: "Base64-encoded HKDF salt (16 bytes)." }),
  nonce: Type.String({ description: "Base64-encoded AES-GCM nonce (12 bytes)." }),
  ciphertext: Type.String({ description: "Base64-encoded encrypted signed payload envelope: AES-256-GCM output followed by its 16-byte tag." }),
});

/** When an envelope issued at `now` stops being valid: now + offline_grace_days, never past the license's expiry. */
export function offlineExpiry(now: number, offlineGraceDays: number, licenseExpiresAt: number | null): number {
  const own = now + offlineGraceDays * DAY_MS;
  return licenseExpiresAt === null ? own : Math.min(own, licenseExpiresAt);
}

/** The canonical `lsk_…` key the client authenticated with (runtimeAuth has already accepted it). */
function canonicalLicenseKey(req: FastifyRequest): string {
  const m = /^[A-Za-z]+ +(\S+) *$/.exec(req.headers.authorization ?? "");
  const key = m ? normalizeLicenseKey(m[1]!) : null;
  if (!key) throw new Error("an authenticated runtime request always carries a well-formed license key");
  return key;
}

/** The hardware fingerprint as bound (trimmed); container bindings carry the one the client sent, if any. */
function boundFingerprint(b: Binding): string | undefined {
  if (b.kind === "hardware") return b.key.slice("hw:".length);
  return b.request.fingerprint;
}

export const offlineRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    "/offline",
    {
      config: { idempotency: "optional" },
      schema: {
        operationId: "issueOfflineLicense",
        tags: ["runtime"],
        summary: "Issue an encrypted offline license envelope for a bound device",
        description:
          "The payload is encrypted with a key derived from the license key (HKDF-SHA256, AES-256-GCM; docs/offline-format.md) and contains a signed inner payload. Verify the inner signature after decryption against `/api/v1/system/public-keys`.",
        headers: IdempotencyHeader(false),
        body: RuntimeBindingRequest,
        response: {
          200: dataEnvelope(OfflineEnvelope),
          ...errorResponses(
            ...RUNTIME_ERRORS,
            "BAD_REQUEST",
            "DEVICE_NOT_ACTIVATED",
            "OFFLINE_NOT_ALLOWED",
            "NOT_FOUND",
            "IDEMPOTENCY_CONFLICT",
            "IDEMPOTENCY_IN_PROGRESS",
          ),
        },
      },
    },
    async (req, reply) => {
      const binding = normalizeBinding(req.body);
      const licenseKey = canonicalLicenseKey(req);
      const lk = app.lk;
      return commitAndRespond(req, reply, async (trx) => {
        const now = lk.clock.now();
        const r = { licenseId: req.runtime!.license.id, binding, ip: req.ip, requestId: req.id, now };
        const locked = await decideLocked(trx, lk.store.engine, "offline", r);
        if (!locked.allowed) return deniedOutcome(req, locked.decision);
        const { license, policy, device } = locked;
        if (!policy.allow_offline_activation) {
          const denial = { allow: false as const, code: "OFFLINE_NOT_ALLOWED" as const, detail: "the policy does not allow offline activation" };
          await recordDenial(trx, license, r, "offline", denial);
          return deniedOutcome(req, denial);
        }
        // Inside the grace period this is the (past) license expiry: the envelope then reports the
        // grace status but permits no offline use (D5: never past the license's own expiry).
        const expiresAt = offlineExpiry(now, policy.offline_grace_days, license.expires_at);

        const fingerprint = boundFingerprint(binding);
        const data = {
          ...(await entitlementFor(trx, { license, policy, status: locked.decision.status, deviceId: device.id, now, version: locked.version })),
          offline: {
            issued_at: new Date(now).toISOString(),
            expires_at: new Date(expiresAt).toISOString(),
            device_id: device.id,
            ...(fingerprint !== undefined ? { fingerprint } : {}),
          },
        };
        const dataJson = JSON.stringify(data);
        const signature = lk.keyring.sign(dataJson);
        lk.metrics.signatures.data.n += 1;
        const envelope = sealOffline(licenseKey, signature.kid, `{"data":${dataJson},"signature":${JSON.stringify(signature)}}`);

        lk.sideEffects.deviceSeen(device.id, now, false, req.ip);
        await recordEvent(trx, {
          event_type: "license.offline_issued",
          actor_type: "license",
          actor_id: license.id,
          resource_type: "license",
          resource_id: license.id,
          metadata: { device_id: device.id, ...bindingSummary(binding), kid: signature.kid, offline_expires_at: data.offline.expires_at },
          ip_address: req.ip,
          request_id: req.id,
          created_at: now,
        });
        return { status: 200, body: JSON.stringify({ data: envelope, meta: responseMeta(req) }) };
      });
    },
  );
};
