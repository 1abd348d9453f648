// Runtime request and response schemas (RuntimeBindingRequest, RuntimeEntitlementResponseData).
import { Type } from "@sinclair/typebox";
import { DateTime } from "../../http/schemas.js";
import { LicenseType } from "../management/policies.js";

const Text = (maxLength: number) => Type.Optional(Type.String({ maxLength }));

export const RuntimeBindingRequest = Type.Object(
  {
    fingerprint: Text(512),
    hostname: Text(255),
    os: Text(255),
    is_vm: Type.Optional(Type.Boolean()),
    is_container: Type.Optional(Type.Boolean()),
    container_id: Text(255),
    cluster_id: Type.Optional(Type.String({ maxLength: 255 })),
    namespace: Text(255),
    pod_name: Text(255),
    app_version: Text(64),
  },
  {
    additionalProperties: false,
    description:
      "Hardware requests use `fingerprint` and leave `is_container` false. Container requests set `is_container` to true and supply at least one of `cluster_id`, `namespace`, `pod_name`, `container_id`.",
  },
);

export const FeatureEntitlement = Type.Object({
  code: Type.String(),
  enabled: Type.Boolean(),
  quota: Type.Optional(Type.Integer()),
  consumed: Type.Optional(Type.Integer()),
  remaining: Type.Optional(Type.Integer()),
});

export const VersionEligibility = Type.Object({
  app_version: Type.String(),
  is_entitled: Type.Boolean(),
  enforced: Type.Boolean({ description: "False when the product has no version catalog yet, so version gating is not enforced." }),
  released_at: Type.Optional(DateTime),
  eligible_through: Type.Optional(DateTime),
});

export const RuntimeEntitlementResponseData = Type.Object({
  license_id: Type.String(),
  status: Type.String(),
  license_type: LicenseType,
  entitlement_version: Type.Integer(),
  issued_at: DateTime,
  next_check_at: DateTime,
  expires_at: Type.Optional(DateTime),
  device_id: Type.String(),
  features: Type.Array(FeatureEntitlement),
  version_eligibility: Type.Optional(VersionEligibility),
});

export const RUNTIME_ERRORS = [
  "INVALID_JSON",
  "UNAUTHORIZED",
  "LICENSE_INACTIVE",
  "LICENSE_EXPIRED",
  "DEVICE_BLACKLISTED",
  "VM_NOT_ALLOWED",
  "CONTAINER_NOT_ALLOWED",
  "VERSION_NOT_ELIGIBLE",
  "VALIDATION_ERROR",
] as const;
