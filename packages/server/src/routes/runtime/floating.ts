// POST /api/v1/license/floating/{checkout,heartbeat,checkin} — floating leases (rules in
// domain/floating.ts). Every answer is signed (D4), denials included.
//  - checkout (Idempotency-Key required): D2 + implicit binding (bindDevice, op "checkout"), then the
//    seat under the same license lock. Checkout is all or nothing: a refused seat leaves no binding
//    behind, only its `floating.limit_exceeded` event.
//  - heartbeat: the license-level D2 checks (licenseGate), then extends the lease.
//  - checkin (Idempotency-Key required): releases the lease; not gated on the license state (the
//    contract gives checkin no 403), so a suspended or expired license can still give its seat back.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { normalizeBinding } from "../../domain/binding.js";
import { checkinData, checkoutData, heartbeatData, leaseExpiresAt, licenseGate, seatDecision } from "../../domain/floating.js";
import { effectiveStatus } from "../../domain/license-status.js";
import { NOT_GATED } from "../../domain/version-eligibility.js";
import { ApiError, type ErrorCode } from "../../http/errors.js";
import { commitAndRespond, type Outcome } from "../../http/respond.js";
import { DateTime, errorResponses, IdempotencyHeader, signedEnvelope } from "../../http/schemas.js";
import { newId, newLeaseToken } from "../../ids.js";
import { leaseExpiredEvent } from "../../jobs/lease-expiry.js";
import { LicenseType } from "../management/policies.js";
import { type EventInput, recordEvent } from "../../store/audit-events.js";
import { bindDevice, bindingSummary } from "../../store/bindings.js";
import type { Tx } from "../../store/db.js";
import { lockLicense } from "../../store/licenses.js";
import { countLiveLeases, endLease, extendLease, findLeaseByTokenHash, findLiveLeaseForDevice, insertLease, type LeaseRow, markLeaseExpired } from "../../store/leases.js";
import type { FastifyRequest } from "fastify";
import { boundEntitlement, entitlementFor } from "./decide.js";
import { deniedOutcome, signedOutcome } from "./respond.js";
import { FeatureEntitlement, RUNTIME_ERRORS, RuntimeBindingRequest, VersionEligibility } from "./schemas.js";

const LEASE_TOKEN = /^llt_[0-9A-Za-z]{22}$/;

export const FloatingLeaseRequest = Type.Object({ lease_token: Type.String({ maxLength: 255 }) }, { additionalProperties: false });

const leaseFields = {
  license_id: Type.String(),
  status: Type.String(),
  license_type: LicenseType,
  entitlement_version: Type.Integer(),
  issued_at: DateTime,
  expires_at: Type.Optional(DateTime),
  device_id: Type.String(),
};

export const FloatingCheckoutResponseData = Type.Object({
  ...leaseFields,
  lease_token: Type.String({ description: "`llt_…`; shown only in this answer. Send it to heartbeat and checkin." }),
  lease_expires_at: DateTime,
  features: Type.Array(FeatureEntitlement),
  version_eligibility: Type.Optional(VersionEligibility),
});

export const FloatingLeaseResponseData = Type.Object({
  ...leaseFields,
  lease_expires_at: DateTime,
  features: Type.Optional(Type.Array(FeatureEntitlement)),
  version_eligibility: Type.Optional(VersionEligibility),
});

const codes = (...list: ErrorCode[]): ErrorCode[] => [...new Set(list)];

/** Thrown inside the checkout transaction so the implicit binding rolls back with the refused seat. */
class SeatsFull extends Error {
  constructor(
    readonly event: EventInput,
    readonly max: number,
  ) {
    super("floating seats full");
  }
}

export const floatingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const lk = app.lk;

  app.post(
    "/floating/checkout",
    {
      config: { idempotency: "required" },
      schema: {
        operationId: "checkoutFloatingLicense",
        tags: ["runtime"],
        summary: "Check out a floating lease for a hardware or container binding",
        headers: IdempotencyHeader(true),
        body: RuntimeBindingRequest,
        response: {
          200: signedEnvelope(FloatingCheckoutResponseData),
          ...errorResponses(
            ...codes(
              ...RUNTIME_ERRORS,
              "VERSION_NOT_ELIGIBLE",
              "FLOATING_NOT_ENABLED",
              "IDEMPOTENCY_KEY_REQUIRED",
              "BAD_REQUEST",
              "ACTIVATION_LIMIT_EXCEEDED",
              "FLOATING_LIMIT_EXCEEDED",
              "IDEMPOTENCY_CONFLICT",
              "IDEMPOTENCY_IN_PROGRESS",
            ),
          ),
        },
      },
    },
    async (req, reply) => {
      const binding = normalizeBinding(req.body);
      const licenseId = req.runtime!.license.id;
      try {
        return await commitAndRespond(req, reply, async (trx) => {
          const now = lk.clock.now();
          const r = await bindDevice(trx, lk.store.engine, {
            licenseId,
            op: "checkout",
            binding,
            ip: req.ip,
            requestId: req.id,
            now,
            seen: (deviceId) => lk.sideEffects.deviceSeen(deviceId, now, false, req.ip),
          });
          if (!r.allowed) return deniedOutcome(req, r.decision);
          // Still under the license row lock taken by bindDevice: count and take the seat.
          const own = await findLiveLeaseForDevice(trx, licenseId, r.device.id, now);
          const seat = seatDecision(r.policy.max_floating_users, own ? 0 : await countLiveLeases(trx, licenseId, now), own !== undefined);
          if (seat.kind === "not_enabled") throw new ApiError("FLOATING_NOT_ENABLED", "floating licensing is off for this license (its policy has max_floating_users 0)");
          const event = { ...licenseActor(req, licenseId, now), metadata: { device_id: r.device.id, ...bindingSummary(binding) } };
          if (seat.kind === "full") {
            throw new SeatsFull({ ...event, event_type: "floating.limit_exceeded", metadata: { ...event.metadata, max_floating_users: seat.max } }, seat.max);
          }

          const token = newLeaseToken();
          const tokenHash = lk.hasher.hash(token);
          const expires = leaseExpiresAt(now, r.policy.floating_timeout_minutes);
          let leaseId: string;
          if (own) {
            // One device, one seat: the device's live lease is extended and re-issued under a new token.
            if (!(await extendLease(trx, own, expires, now, tokenHash))) throw new Error("a live lease found under the license lock could not be extended");
            leaseId = own.id;
          } else {
            leaseId = newId("lse", now);
            await insertLease(trx, {
              id: leaseId,
              license_id: licenseId,
              device_id: r.device.id,
              token_hash: tokenHash,
              status: "active",
              expires_at: expires,
              last_heartbeat_at: null,
              ended_at: null,
              created_at: now,
              updated_at: now,
            });
          }
          await recordEvent(trx, {
            ...event,
            event_type: "floating.checked_out",
            metadata: { lease_id: leaseId, lease_expires_at: new Date(expires).toISOString(), reissued: own !== undefined, ...event.metadata },
          });
          return signedOutcome(req, 200, checkoutData(await boundEntitlement(trx, r, now), token, expires));
        });
      } catch (err) {
        if (!(err instanceof SeatsFull)) throw err;
        // The refusal is audited on its own, after the rollback of the (possibly implicit) binding.
        await recordEvent(lk.store.db, err.event);
        throw new ApiError("FLOATING_LIMIT_EXCEEDED", `all ${err.max} floating seats of this license are leased; retry after a checkin or lease expiry`);
      }
    },
  );

  app.post(
    "/floating/heartbeat",
    {
      schema: {
        operationId: "heartbeatFloatingLicense",
        tags: ["runtime"],
        summary: "Extend a floating lease before it expires",
        body: FloatingLeaseRequest,
        response: {
          200: signedEnvelope(FloatingLeaseResponseData),
          ...errorResponses(
            ...codes(...RUNTIME_ERRORS, "DEVICE_NOT_ACTIVATED", "LEASE_NOT_FOUND", "LEASE_EXPIRED"),
          ),
        },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const now = lk.clock.now();
        const { license, policy, lease } = await lockedLease(trx, req, req.body.lease_token);
        // D2 order: the license-level checks first, then the lease's own rule (expiry).
        const device = await trx.selectFrom("devices").selectAll().where("id", "=", lease.device_id).executeTakeFirstOrThrow();
        const gate = licenseGate({ now, license, policy, device });
        if (!gate.allow) return deniedOutcome(req, { allow: false, code: gate.code, detail: gate.detail });
        assertNotEnded(lease);
        const expired = await expiredOutcome(trx, req, lease, now);
        if (expired) return expired;
        const expires = leaseExpiresAt(now, policy.floating_timeout_minutes);
        if (!(await extendLease(trx, lease, expires, now))) throw new Error("a live lease found under the license lock could not be extended");
        // The app_version was gated at checkout; a heartbeat carries none, so none is judged here.
        const entitlement = await entitlementFor(trx, { license, policy, status: gate.status, deviceId: device.id, now, version: NOT_GATED });
        return signedOutcome(req, 200, heartbeatData(entitlement, expires));
      }),
  );

  app.post(
    "/floating/checkin",
    {
      config: { idempotency: "required" },
      schema: {
        operationId: "checkinFloatingLicense",
        tags: ["runtime"],
        summary: "Check in a floating lease token",
        headers: IdempotencyHeader(true),
        body: FloatingLeaseRequest,
        response: {
          200: signedEnvelope(FloatingLeaseResponseData),
          ...errorResponses(
            "INVALID_JSON",
            "IDEMPOTENCY_KEY_REQUIRED",
            "BAD_REQUEST",
            "UNAUTHORIZED",
            "LEASE_NOT_FOUND",
            "LEASE_EXPIRED",
            "IDEMPOTENCY_CONFLICT",
            "IDEMPOTENCY_IN_PROGRESS",
            "VALIDATION_ERROR",
          ),
        },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const now = lk.clock.now();
        const { license, policy, lease } = await lockedLease(trx, req, req.body.lease_token);
        assertNotEnded(lease);
        const expired = await expiredOutcome(trx, req, lease, now);
        if (expired) return expired;
        if (!(await endLease(trx, lease, "checked_in", now))) throw new Error("a live lease found under the license lock could not be ended");
        await recordEvent(trx, {
          ...licenseActor(req, license.id, now),
          event_type: "floating.checked_in",
          metadata: { lease_id: lease.id, device_id: lease.device_id },
        });
        const status = effectiveStatus(license, policy.grace_period_days, now);
        return signedOutcome(req, 200, checkinData({ license, licenseType: policy.license_type, status, deviceId: lease.device_id, now }));
      }),
  );
};

function licenseActor(req: FastifyRequest, licenseId: string, now: number) {
  return {
    actor_type: "license" as const,
    actor_id: licenseId,
    resource_type: "license",
    resource_id: licenseId,
    ip_address: req.ip,
    request_id: req.id,
    created_at: now,
  };
}

/**
 * The license (row-locked, so a heartbeat cannot revive a lease a concurrent checkout already counted
 * as free), its policy, and the lease named by the token. 422 for something that cannot be a lease
 * token; 404 LEASE_NOT_FOUND for a token unknown on this license. Whether the lease has ended is
 * judged by the caller (after the D2 checks for a heartbeat) with assertNotEnded().
 */
async function lockedLease(trx: Tx, req: FastifyRequest, token: string) {
  if (!LEASE_TOKEN.test(token)) throw new ApiError("VALIDATION_ERROR", "field lease_token: is not a lease token (llt_ followed by 22 letters and digits)");
  const lk = req.server.lk;
  const licenseId = req.runtime!.license.id;
  const locked = await lockLicense(trx, lk.store.engine, licenseId);
  if (!locked) throw new Error(`license ${licenseId} not found`);
  const { license, policy } = locked;
  const lease = await findLeaseByTokenHash(trx, licenseId, lk.hasher.hash(token));
  if (!lease) throw new ApiError("LEASE_NOT_FOUND", "no lease with this lease_token on this license");
  return { license, policy, lease };
}

/** 404 LEASE_NOT_FOUND for a lease that was checked in or released (it is gone; check out again). */
function assertNotEnded(lease: { status: string }): void {
  if (lease.status === "checked_in") throw new ApiError("LEASE_NOT_FOUND", "this lease was checked in; check out again");
  if (lease.status === "released") {
    throw new ApiError("LEASE_NOT_FOUND", "this lease was released (by an operator, or when its device lost its binding); check out again");
  }
}

/**
 * LEASE_EXPIRED for a lease past its timeout. A lease still stored as active is marked expired here,
 * with its one `floating.expired` event, committed with the denial (the expiry job then skips it).
 */
async function expiredOutcome(trx: Tx, req: FastifyRequest, lease: LeaseRow, now: number): Promise<Outcome | null> {
  if (lease.status === "active" && lease.expires_at > now) return null;
  if (lease.status === "active" && (await markLeaseExpired(trx, lease, now))) await recordEvent(trx, leaseExpiredEvent(lease, now, req.id));
  return deniedOutcome(req, { allow: false, code: "LEASE_EXPIRED", detail: `the lease expired at ${new Date(lease.expires_at).toISOString()}; check out again` });
}
