// The runtime decision (D2), as one readable function. Every runtime call is decided here, in this
// order, and the first failure wins:
//   1. credentials                      (checked before this function: UNAUTHORIZED)
//   2. revoked / suspended / not started → LICENSE_INACTIVE
//   3. past expires_at                   → grace_period within grace days, else LICENSE_EXPIRED
//   4. device blacklisted                → DEVICE_BLACKLISTED
//   5. VM / container not allowed        → VM_NOT_ALLOWED / CONTAINER_NOT_ALLOWED
//   6. version gating                    → VERSION_NOT_ELIGIBLE (only once the product has a version catalog)
//   7. the operation's own rule: an active binding passes; `check` never binds and `offline` never
//      creates a seat (D5) (DEVICE_NOT_ACTIVATED); `deactivate` needs a binding to release (NOT_FOUND);
//      activate binds explicitly, validate / consume / checkout bind implicitly (D2) when a slot is
//      free, else ACTIVATION_LIMIT_EXCEEDED. Quotas, floating seats and deactivation limits are
//      decided after this, by the operation, under the same license lock.
import type { ErrorCode } from "../http/errors.js";
import type { Binding } from "./binding.js";
import { effectiveStatus } from "./license-status.js";
import type { VersionJudgement } from "./version-eligibility.js";

export type RuntimeOperation = "activate" | "validate" | "check" | "consume" | "offline" | "deactivate" | "checkout";

/** Operations that bind an unbound device when a slot is free (activate explicitly, the rest implicitly, D2). */
export const BINDING_OPERATIONS: readonly RuntimeOperation[] = ["activate", "validate", "consume", "checkout"];

export interface DecisionInput {
  op: RuntimeOperation;
  now: number;
  license: {
    state: "active" | "suspended" | "revoked";
    starts_at: number | null;
    expires_at: number | null;
    active_device_count: number;
  };
  policy: {
    grace_period_days: number;
    allow_vm: number | boolean;
    allow_container: number | boolean;
    max_activations: number;
    max_container_instances: number;
  };
  binding: Binding;
  /** The device already recorded for this binding on this license, if any. */
  device: { status: string } | null;
  /** Active container bindings on the license; needed only when a new container would bind under a container cap. */
  activeContainerCount: number;
  /**
   * The app_version judged against the product's version catalogue (domain/version-eligibility.ts;
   * `loadVersionJudgement` in store/product-versions.ts loads and judges it). Step 6 denies when
   * gating is enforced and the version is not entitled. `NOT_GATED` skips the step.
   */
  version: Pick<VersionJudgement, "enforced" | "entitled" | "detail">;
}

export type Decision =
  | { allow: true; status: "active" | "grace_period"; binds: "existing" | "new" }
  | { allow: false; code: ErrorCode; detail: string };

const deny = (code: ErrorCode, detail: string): Decision => ({ allow: false, code, detail });

export function decide(input: DecisionInput): Decision {
  const { license, policy, binding, device, now, op } = input;

  if (license.state === "revoked") return deny("LICENSE_INACTIVE", "license is revoked");
  if (license.state === "suspended") return deny("LICENSE_INACTIVE", "license is suspended");
  if (license.starts_at !== null && license.starts_at > now) {
    return deny("LICENSE_INACTIVE", `license starts at ${new Date(license.starts_at).toISOString()}`);
  }

  const status = effectiveStatus(license, policy.grace_period_days, now);
  if (status === "expired") return deny("LICENSE_EXPIRED", `license expired at ${new Date(license.expires_at!).toISOString()}`);
  const okStatus = status === "grace_period" ? "grace_period" : "active";

  if (device?.status === "blacklisted") return deny("DEVICE_BLACKLISTED", "this device is blacklisted for the license");

  if (binding.request.is_vm === true && !policy.allow_vm) return deny("VM_NOT_ALLOWED", "the policy does not allow virtual machines");
  if (binding.kind === "container" && !policy.allow_container) return deny("CONTAINER_NOT_ALLOWED", "the policy does not allow containers");

  if (input.version?.enforced && !input.version.entitled) {
    return deny("VERSION_NOT_ELIGIBLE", input.version.detail ?? "field app_version: this version is not eligible for the license");
  }

  if (device?.status === "active") return { allow: true, status: okStatus, binds: "existing" };
  if (op === "check" || op === "offline") return deny("DEVICE_NOT_ACTIVATED", "no active binding for this device; activate or validate first");
  if (op === "deactivate") return deny("NOT_FOUND", "no active binding for this device on this license");
  if (license.active_device_count >= policy.max_activations) {
    return deny("ACTIVATION_LIMIT_EXCEEDED", `all ${policy.max_activations} activations of this license are in use`);
  }
  if (binding.kind === "container" && policy.max_container_instances > 0 && input.activeContainerCount >= policy.max_container_instances) {
    return deny("ACTIVATION_LIMIT_EXCEEDED", `all ${policy.max_container_instances} container instances of this license are in use`);
  }
  return { allow: true, status: okStatus, binds: "new" };
}
