// The error-code table (D1): every code the server can answer with, its HTTP status and fixed message.
// docs/errors.md is generated from this table (`npm run docs:errors`); a test fails when they drift.

export interface ErrorSpec {
  status: number;
  message: string;
  /** When a client or operator sees it; goes into docs/errors.md. */
  when: string;
}

export const ERROR_CODES = {
  INVALID_JSON: {
    status: 400,
    message: "invalid JSON body",
    when: "The body is not JSON, has unknown fields, or a field has the wrong JSON type.",
  },
  INVALID_QUERY: {
    status: 400,
    message: "invalid query parameter",
    when: "A query parameter or cursor is malformed (e.g. `limit=0`, `limit=abc`).",
  },
  IDEMPOTENCY_KEY_REQUIRED: {
    status: 400,
    message: "idempotency key required",
    when: "The operation requires an `Idempotency-Key` header and none was sent.",
  },
  BAD_REQUEST: {
    status: 400,
    message: "bad request",
    when: "Any other malformed request, e.g. a bad header such as an over-long `Idempotency-Key`.",
  },
  UNAUTHORIZED: {
    status: 401,
    message: "unauthorized",
    when: "Management: token missing, malformed, unknown, expired, inactive or CIDR-blocked. Runtime: license key missing or unknown. `detail` says which.",
  },
  TOKEN_SCOPE_DENIED: {
    status: 403,
    message: "token scope denied",
    when: "The management token lacks the scope the route requires; `detail` is `requires <scope>`.",
  },
  LICENSE_INACTIVE: {
    status: 403,
    message: "license is not active",
    when: "Runtime: the license is suspended, revoked, or its `starts_at` is in the future.",
  },
  LICENSE_EXPIRED: {
    status: 403,
    message: "license has expired",
    when: "Runtime: the license is past `expires_at` and past its policy's grace period.",
  },
  DEVICE_BLACKLISTED: {
    status: 403,
    message: "device is blacklisted",
    when: "Runtime: the binding was blacklisted by an operator.",
  },
  DEVICE_NOT_ACTIVATED: {
    status: 403,
    message: "device is not activated",
    when: "Runtime: `check` (which never writes) was called for a fingerprint with no active binding.",
  },
  VM_NOT_ALLOWED: {
    status: 403,
    message: "virtual machines are not allowed",
    when: "Runtime: `is_vm` is true and the policy has `allow_vm: false`.",
  },
  CONTAINER_NOT_ALLOWED: {
    status: 403,
    message: "containers are not allowed",
    when: "Runtime: a container binding on a policy with `allow_container: false`.",
  },
  VERSION_NOT_ELIGIBLE: {
    status: 403,
    message: "version is not eligible",
    when: "Runtime: version gating is enforced and `app_version` is unknown or released after `eligible_through`.",
  },
  OFFLINE_NOT_ALLOWED: {
    status: 403,
    message: "offline activation is not allowed",
    when: "Runtime: an offline envelope was requested on a policy with `allow_offline_activation: false`.",
  },
  FEATURE_NOT_ENTITLED: {
    status: 403,
    message: "feature is not entitled",
    when: "Runtime: the feature is not assigned to the license, disabled, or expired.",
  },
  FLOATING_NOT_ENABLED: {
    status: 403,
    message: "floating licensing is not enabled",
    when: "Runtime: floating checkout on a policy with `max_floating_users: 0`.",
  },
  NOT_FOUND: {
    status: 404,
    message: "not found",
    when: "The route or the resource does not exist (or is not visible to the credential).",
  },
  LEASE_NOT_FOUND: {
    status: 404,
    message: "lease not found",
    when: "Runtime: the floating `lease_token` is unknown for this license.",
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    message: "method not allowed",
    when: "The path exists but not with this HTTP method; the `Allow` header lists the ones that do.",
  },
  IDEMPOTENCY_CONFLICT: {
    status: 409,
    message: "idempotency key reused with a different request",
    when: "The `Idempotency-Key` was already used with another body, query or path. Not transient: resend the original request or use a new key.",
  },
  IDEMPOTENCY_IN_PROGRESS: {
    status: 409,
    message: "request with this idempotency key is in progress",
    when: "The first request with this `Idempotency-Key` is still being processed; retry shortly.",
  },
  CONFLICT: {
    status: 409,
    message: "conflict",
    when: "A unique value is taken, the resource is in use, or the state transition is not allowed; `detail` says which.",
  },
  ACTIVATION_LIMIT_EXCEEDED: {
    status: 409,
    message: "activation limit exceeded",
    when: "Runtime: binding another device would exceed the policy's `max_activations` (or `max_container_instances`).",
  },
  FLOATING_LIMIT_EXCEEDED: {
    status: 409,
    message: "floating limit exceeded",
    when: "Runtime: all `max_floating_users` seats are leased.",
  },
  FEATURE_QUOTA_EXCEEDED: {
    status: 409,
    message: "feature quota exceeded",
    when: "Runtime: consuming `amount` would exceed the feature's `max_consumptions`.",
  },
  TRANSFER_LIMIT_EXCEEDED: {
    status: 409,
    message: "transfer limit exceeded",
    when: "The license has used the policy's `max_transfers`.",
  },
  DEACTIVATION_LIMIT_EXCEEDED: {
    status: 409,
    message: "deactivation limit exceeded",
    when: "Runtime: more deactivations than `max_deactivations` within `deactivation_window_days`.",
  },
  LEASE_EXPIRED: {
    status: 409,
    message: "lease expired",
    when: "Runtime: the floating lease passed `lease_expires_at` before this heartbeat or checkin.",
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    message: "payload too large",
    when: "The body is larger than `LICENSEKIT_BODY_LIMIT_BYTES`.",
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: "unsupported media type",
    when: "A body was sent with a `Content-Type` other than `application/json`.",
  },
  VALIDATION_ERROR: {
    status: 422,
    message: "validation failed",
    when: "The JSON decoded but breaks a rule (missing required field, out of range, unknown reference); `detail` names the field.",
  },
  RATE_LIMITED: {
    status: 429,
    message: "rate limited",
    when: "Too many requests; wait for `Retry-After` seconds.",
  },
  INTERNAL_ERROR: {
    status: 500,
    message: "internal error",
    when: "An unexpected server fault. Nothing internal is revealed; quote `meta.request_id` when reporting it.",
  },
  SERVICE_UNAVAILABLE: {
    status: 503,
    message: "service unavailable",
    when: "The database cannot be reached or is busy; retry after `Retry-After` seconds.",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class ApiError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(
    readonly code: ErrorCode,
    public detail?: string,
    headers: Record<string, string> = {},
  ) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = "ApiError";
    // details may quote client input; keep them short
    if (detail !== undefined && detail.length > 500) this.detail = `${detail.slice(0, 497)}...`;
    this.status = ERROR_CODES[code].status;
    this.headers = headers;
  }
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  detail?: string;
}

export function errorBody(err: ApiError): ErrorBody {
  const body: ErrorBody = { code: err.code, message: ERROR_CODES[err.code].message };
  if (err.detail !== undefined) body.detail = err.detail;
  return body;
}

/** Statuses whose answers are not stored for idempotent replay (D3), so a retry can succeed. */
export function isReplayableStatus(status: number): boolean {
  return status < 500 && status !== 401 && status !== 429;
}
