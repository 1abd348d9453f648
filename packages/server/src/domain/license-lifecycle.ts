// License state transitions. Suspend and reinstate are reversible; revoke is permanent.
// Repeating a transition that already holds is a no-op answered 200 (contract: "suspended or
// already suspended", "reinstated or already active"); anything else on a revoked license is 409.
import { ApiError } from "../http/errors.js";
import type { EventType } from "./event-types.js";

export type LicenseState = "active" | "suspended" | "revoked";
export type LifecycleAction = "suspend" | "reinstate" | "revoke";

const TARGET: Record<LifecycleAction, LicenseState> = { suspend: "suspended", reinstate: "active", revoke: "revoked" };

export function transition(current: LicenseState, action: LifecycleAction): { next: LicenseState; changed: boolean } {
  const next = TARGET[action];
  if (current === next) return { next, changed: false };
  if (current === "revoked") throw new ApiError("CONFLICT", `license is revoked; revocation is permanent and it cannot be ${action === "suspend" ? "suspended" : "reinstated"}`);
  return { next, changed: true };
}

export const LIFECYCLE_EVENT: Record<LifecycleAction, EventType> = {
  suspend: "license.suspended",
  reinstate: "license.reinstated",
  revoke: "license.revoked",
};
