// /api/v1/licenses/{id}/devices (NOTES §12): list, get, reset (releases the seat; the device may
// activate again) and blacklist (releases the seat; runtime use answers DEVICE_BLACKLISTED).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata, StringEnum } from "../../http/schemas.js";
import { changeDevice, type DeviceAction } from "../../store/license-actions.js";
import { DEVICE_STATUSES, deviceView, findLicenseDevice, listLicenseDevices } from "../../store/devices.js";
import { findLicense } from "../../store/licenses.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { MANAGEMENT_ERRORS, READ_ERRORS } from "./common.js";

export const Device = Type.Object({
  id: Type.String(),
  license_id: Type.String(),
  binding_kind: StringEnum(["hardware", "container"] as const),
  binding_key: Type.String(),
  fingerprint: Type.Optional(Type.String()),
  hostname: Type.Optional(Type.String()),
  os: Type.Optional(Type.String()),
  ip_address: Type.Optional(Type.String()),
  is_vm: Type.Boolean(),
  is_container: Type.Boolean(),
  container_id: Type.Optional(Type.String()),
  cluster_id: Type.Optional(Type.String()),
  namespace: Type.Optional(Type.String()),
  pod_name: Type.Optional(Type.String()),
  status: StringEnum(DEVICE_STATUSES),
  first_seen_at: DateTime,
  last_seen_at: DateTime,
  last_validated_at: Type.Optional(DateTime),
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

const DeviceParams = Type.Object({ id: Type.String(), device_id: Type.String() });

const ACTIONS: { action: DeviceAction; operationId: string; summary: string }[] = [
  { action: "reset", operationId: "resetLicenseDevice", summary: "Reset an active device: releases its seat; it may activate again (409 unless active)" },
  { action: "blacklist", operationId: "blacklistLicenseDevice", summary: "Blacklist a device: releases its seat if active and blocks its reuse (409 if already blacklisted)" },
];

export const deviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/licenses/:id/devices",
    {
      config: { scope: "license:read" },
      schema: {
        operationId: "listLicenseDevices",
        summary: "List the devices of a license, newest first",
        tags: ["devices"],
        params: IdParams,
        querystring: ListQuery,
        response: { 200: listEnvelope(Device), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const limit = clampLimit(req.query.limit);
      const before = decodeCursor(req.query.cursor);
      if (!(await findLicense(db, req.params.id))) throw new ApiError("NOT_FOUND", `license ${req.params.id} not found`);
      const page = await listLicenseDevices(db, req.params.id, limit, before);
      return { data: page.rows.map(deviceView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.get(
    "/licenses/:id/devices/:device_id",
    {
      config: { scope: "license:read" },
      schema: {
        operationId: "getLicenseDevice",
        tags: ["devices"],
        params: DeviceParams,
        response: { 200: dataEnvelope(Device), ...errorResponses(...READ_ERRORS) },
      },
    },
    async (req) => {
      const device = await findLicenseDevice(app.lk.store.db, req.params.id, req.params.device_id);
      if (!device) throw new ApiError("NOT_FOUND", `device ${req.params.device_id} not found on license ${req.params.id}`);
      return { data: deviceView(device), meta: responseMeta(req) };
    },
  );

  for (const { action, operationId, summary } of ACTIONS) {
    app.post(
      `/licenses/:id/devices/:device_id/${action}`,
      {
        config: { scope: "device:write", idempotency: "optional" },
        schema: {
          operationId,
          summary,
          tags: ["devices"],
          params: DeviceParams,
          headers: IdempotencyHeader(false),
          response: { 200: dataEnvelope(Device), ...errorResponses(...MANAGEMENT_ERRORS, "NOT_FOUND", "CONFLICT", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS") },
        },
      },
      async (req, reply) =>
        commitAndRespond(req, reply, async (trx) => {
          const { id, device_id } = req.params;
          const event = managementEvent(req, action === "reset" ? "device.reset" : "device.blacklisted", "device", device_id);
          const device = await changeDevice(trx, app.lk.store.engine, id, device_id, action, event);
          if (!device) throw new ApiError("NOT_FOUND", `device ${device_id} not found on license ${id}`);
          return managementOutcome(req, reply, 200, deviceView(device));
        }),
    );
  }
};
